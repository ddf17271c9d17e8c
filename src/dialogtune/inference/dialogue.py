"""Conversations with a chat model: an interactive session (history, reset, streamed
replies) and replies to a file of dialogues. Used by ``dialogtune chat`` and ``generate``;
the terminal and file I/O stay in ``commands``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..data.formats import read_dialogues
from ..data.formats.dialogue import dialogue_to_chat_json
from ..data.records import Dialogue, Message
from .chat import ChatPredictor


class ChatSession:
    """A multi-turn conversation: each reply sees every turn since the start or ``reset``."""

    def __init__(self, predictor: ChatPredictor, system: str | None = None,
                 max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 0.9):
        self.predictor = predictor
        self.start = [{"role": "system", "content": system}] if system else []
        self.history = list(self.start)
        self.options = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                        "top_p": top_p}

    @classmethod
    def load(cls, name_or_run: str | Path, policy=None, precision: str = "fp32",
             **options) -> "ChatSession":
        """A session with a chat run or a model alias/folder (``ChatPredictor.load``)."""
        return cls(ChatPredictor.load(name_or_run, policy, precision), **options)

    @property
    def name(self) -> str:
        return self.predictor.name

    def reset(self) -> None:
        """Forget the conversation (the system message stays)."""
        self.history = list(self.start)

    def send(self, text: str) -> Iterator[str]:
        """Stream the reply to ``text``; the exchange joins the history once it is complete."""
        self.history.append({"role": "user", "content": text})
        o = self.options
        pieces = []
        for piece in self.predictor.stream(self.history, o["max_new_tokens"],
                                           o["temperature"], o["top_p"]):
            pieces.append(piece)
            yield piece
        self.history.append({"role": "assistant", "content": "".join(pieces).strip()})


def reply_to_dialogues(predictor: ChatPredictor, dialogues: list[Dialogue],
                       max_new_tokens: int = 128, temperature: float = 0.0,
                       seed: int | None = None) -> list[dict]:
    """Each dialogue as a chat record with a generated reply appended (and under ``reply``).

    A dialogue ending with an assistant turn is answered in its place: the reply answers
    what precedes it.
    """
    records = []
    for dialogue in dialogues:
        if dialogue.messages[-1].role == "assistant":
            dialogue.messages = dialogue.messages[:-1]
        context = [{"role": m.role, "content": m.content} for m in dialogue.messages]
        reply = predictor.chat(context, max_new_tokens, temperature, seed=seed)
        dialogue.messages.append(Message("assistant", reply))
        record = dialogue_to_chat_json(dialogue)
        record["reply"] = reply
        records.append(record)
    return records


def generate_replies(run: str | Path, data: str | Path, data_format: str = "auto",
                     max_new_tokens: int = 128, temperature: float = 0.0,
                     seed: int | None = None, policy=None, precision: str = "fp32"
                     ) -> list[dict]:
    """``dialogtune generate``: read ``data`` (before loading the model, so that a data
    error comes first), load ``run`` and reply to each dialogue."""
    dialogues = read_dialogues(data, data_format)
    predictor = ChatPredictor.load(run, policy, precision)
    return reply_to_dialogues(predictor, dialogues, max_new_tokens, temperature, seed)
