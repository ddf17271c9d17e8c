"""The chat task: supervised fine-tuning of a causal LM on dialogues (assistant turns
trained through the model's chat template); evaluated by perplexity and generated replies."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data.encode.chat import EncodedDialogue, encode_dialogues
from ..data.encode.tools import dialogues_use_tools
from ..data.formats import read_dialogues
from ..data.formats.documents import is_document_path
from ..errors import DataError
from ..inference.chat import ChatPredictor
from ..strategies import CAUSAL_LM
from .base import Task
from .causal_lm import LM_OBJECTIVE, evaluate_lm, lm_defaults, train_lm


def read_dialogue_records(cfg: RunConfig, path: str) -> list:
    """The dialogues of one file, in the run's ``data.format``, the run's ``data.tools``
    given to those without tools of their own."""
    return read_dialogues(path, cfg.data.format, cfg.data.tools)


def encode_dialogue_file(cfg: RunConfig, tokenizer, path: str
                         ) -> tuple[list[EncodedDialogue], dict]:
    """Dialogues through the chat template, assistant tokens labelled (train and eval alike).

    What encoding reported includes ``uses_tools`` (any tools, call or result): it lands in
    the run summary's ``data``, and ``dialogtune eval`` on tool data scores a run trained
    without tools as it was trained (``evaluate.chat_tools``)."""
    if is_document_path(path):
        raise DataError("documents are for continued pre-training: use --task pretrain", path)
    dialogues = read_dialogue_records(cfg, path)
    encoded, stats = encode_dialogues(tokenizer, dialogues, cfg.data.max_length)
    return encoded, {**stats.as_dict(), "uses_tools": dialogues_use_tools(dialogues)}


def train_chat(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Fine-tune a causal LM on dialogues; writes the run directory."""
    return train_lm(TASK, encode_dialogue_file, cfg, resume, callbacks)


def evaluate_chat(run: str | Path, data: str, output: Path | None = None, base: bool = False,
                  generate_turns: int = 40, max_new_tokens: int = 48, policy=None,
                  oos_threshold: float | None = None, tools: str | None = None,
                  backend: str = "torch") -> dict:
    """Score a chat run (or, with ``base``, the model it started from) on held-out data;
    ``tools``: a tools file for dialogues without tools (default: the run's ``data.tools``)."""
    return evaluate_lm(Path(run), data, output, base, generate_turns, max_new_tokens, policy,
                       oos_threshold, tools=tools, backend=backend)


# 2048 tokens: tool lists and results lengthen dialogues. SGD restaurants with tools (compact
# rendering, SmolLM2) lose 357 of 2,960 assistant turns to a 1,024-token cut, 10 to 1,536,
# none to 2,048, while one LoRA step peaks at 2.4 / 4.7 / 5.9 GiB RSS at those lengths
# (benchmarks/tools_length.py, RESULTS.md "Tool-calling dialogue length"). A cap, not a
# padded length: the plain SGD dialogues (at most 614 tokens) cost the same as under 1,024.
CHAT_MAX_LENGTH = 2048
TASK = Task("chat", CAUSAL_LM, defaults=lm_defaults(max_length=CHAT_MAX_LENGTH),
            train=train_chat, evaluate=evaluate_chat, load_predictor=ChatPredictor.from_run,
            read_data=read_dialogue_records,
            objective=LM_OBJECTIVE)
