"""Preference data reader: judged replies → :class:`~dialogtune.data.records.Preference`.

One JSON object a line (or a ``.json`` array), in any of these forms:

- paired, dialogtune's: ``{"messages": [...context...], "chosen": {assistant message},
  "rejected": {assistant message}}``; the context may hold many turns, tool calls and
  results, and the record may carry ``tools`` (read exactly as the chat reader reads them);
- paired, TRL's: ``{"prompt": text or messages, "chosen": ..., "rejected": ...}`` where a
  reply is a text, a message, or a one-message list; or TRL's implicit prompt: ``chosen``
  and ``rejected`` are whole conversations that differ only in their last message;
- unpaired (KTO): ``{"messages" or "prompt": ..., "completion": ..., "label": true|false}``.

Each context + reply goes through the chat reader (``dialogue.parse_dialogue``), so tool
calls, results and their links are read exactly as for chat SFT; a problem in a reply is
reported under its own field (``chosen.content``, ``completion.tool_calls[0]``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..records import Dialogue, Preference
from .base import Items, Loaded, ReadOptions, json_objects
from .dialogue import parse_dialogue
from .tools_file import tools_from, with_tools

REPLY_KEYS = ("chosen", "rejected", "completion")


def read_preference_records(out: Loaded, options: ReadOptions, items: Items | None = None
                            ) -> None:
    """Every record of ``out.path`` as a Preference; a bad row is a problem by line/field."""
    for line, obj in json_objects(out, items):
        try:
            out.keep(parse_preference(obj, out.path, line), obj)
        except DataError as exc:
            out.problem_from(exc)


def read_preferences(path: str | Path, tools: str | Path | None = None, strict: bool = True
                     ) -> Loaded:
    """The preference records of ``path`` (strict: the first bad row raises). ``tools``: a
    tools file for the records without tools of their own."""
    file_tools = tools_from(tools)
    out = Loaded(str(path), "preference", "preference", "jsonl", strict)
    read_preference_records(out, ReadOptions())
    if not out.preferences and not out.problems:
        raise DataError("no preference records found", str(path))
    for record in out.preferences:
        with_tools([d for d in (record.chosen, record.rejected) if d is not None], file_tools)
    return out


def parse_preference(obj: dict, path: str, line: int) -> Preference:
    """One record in any of the module's forms, or a DataError at ``path:line``."""
    rest = {k: v for k, v in obj.items() if k not in ("messages", "prompt", "label", *REPLY_KEYS)}
    if "completion" in obj:
        label = obj.get("label")
        if not isinstance(label, bool):
            raise DataError("an unpaired row needs 'label': true or false", path, line, "label")
        context = _context(obj, path, line, "completion")
        dialogue = _with_reply(context, obj["completion"], "completion", rest, path, line)
        return Preference(dialogue if label else None, None if label else dialogue, line, path)
    missing = [k for k in ("chosen", "rejected") if k not in obj]
    if missing:
        raise DataError("expected 'chosen' and 'rejected' (a pair) or 'completion' and "
                        "'label' (an unpaired row)", path, line, missing[0])
    context = _context(obj, path, line, "chosen")
    chosen, rejected = obj["chosen"], obj["rejected"]
    if context is None:  # TRL's implicit prompt: two whole conversations
        context, chosen, rejected = _implicit_prompt(chosen, rejected, path, line)
    return Preference(_with_reply(context, chosen, "chosen", rest, path, line),
                      _with_reply(context, rejected, "rejected", rest, path, line), line, path)


def _context(obj: dict, path: str, line: int, reply_key: str) -> list | None:
    """The messages before the scored reply: ``messages``, or TRL's ``prompt`` (a text is
    one user turn); None for TRL's implicit prompt (only allowed for pairs)."""
    key = "messages" if "messages" in obj else "prompt" if "prompt" in obj else None
    value = obj.get(key) if key else None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value:
        return value
    if key is None and reply_key == "chosen" and isinstance(obj.get("chosen"), list):
        return None
    raise DataError("expected the context as 'messages' (a non-empty list) or 'prompt'",
                    path, line, key or "messages")


def _implicit_prompt(chosen: Any, rejected: Any, path: str, line: int
                     ) -> tuple[list, dict, dict]:
    """(context, chosen reply, rejected reply) of two conversations sharing all but the end."""
    if not isinstance(rejected, list) or len(chosen) < 2 or len(rejected) != len(chosen):
        raise DataError("without a prompt, 'chosen' and 'rejected' must be conversations of "
                        "equal length that differ only in their last message", path, line,
                        "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise DataError("'chosen' and 'rejected' differ before their last message", path,
                        line, "rejected")
    return chosen[:-1], chosen[-1], rejected[-1]


def _with_reply(context: list, reply: Any, key: str, rest: dict, path: str, line: int
                ) -> Dialogue:
    """The context plus the reply as one chat dialogue, read by the chat reader."""
    if isinstance(reply, list):  # TRL: a one-message list
        if len(reply) != 1:
            raise DataError("expected one assistant message", path, line, key)
        reply = reply[0]
    if isinstance(reply, str):
        reply = {"role": "assistant", "content": reply}
    if not isinstance(reply, dict) or reply.get("role", "assistant") != "assistant":
        raise DataError("expected an assistant message (or its text)", path, line, key)
    reply = {**reply, "role": "assistant"}
    reply.pop("weight", None)  # the reply is always the scored turn
    try:
        return parse_dialogue({**rest, "messages": [*context, reply]}, "chat", path, line)
    except DataError as exc:
        raise _renamed(exc, len(context), key) from None


def _renamed(exc: DataError, reply_index: int, key: str) -> DataError:
    """The chat reader's error with ``messages[<the reply>]`` called by the reply's key."""
    field = exc.field
    if field:
        field = re.sub(rf"^messages\[{reply_index}\]", key, field)
    return DataError(exc.reason, exc.path, exc.line, field)
