"""Dialogue reader: chat-messages JSONL, ShareGPT and Alpaca → Dialogue records.

The format is detected from the first readable record unless named. Every record is
validated; a bad one is a problem with file, line and field (see ``base``).
"""

from __future__ import annotations

from typing import Any

from ...errors import DataError
from ..files import json_records
from ..records import Dialogue, Message
from .base import Items, Loaded, ReadOptions

FORMATS = ("chat", "sharegpt", "alpaca")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "model": "assistant", "bot": "assistant"}


def detect_format(obj: Any) -> str | None:
    """The dialogue format of one record by its keys; None when it is none of them."""
    if isinstance(obj, dict):
        if "messages" in obj:
            return "chat"
        if "conversations" in obj:
            return "sharegpt"
        if "instruction" in obj and "output" in obj:
            return "alpaca"
    return None


def read_dialogue_records(out: Loaded, options: ReadOptions, items: Items | None = None
                          ) -> None:
    """Every record of a JSONL file or ``.json`` array in ``out.format`` (detected from
    the first readable record when None or "auto")."""
    fmt = None if out.format in (None, "auto") else out.format
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}", out.path)
    for line, obj in items if items is not None else json_records(out.path):
        if isinstance(obj, DataError):
            out.problem_from(obj)
            continue
        if fmt is None:
            fmt = out.format = _known_format(obj, out.path, line)
        try:
            out.keep(parse_dialogue(obj, fmt, out.path, line), obj)
        except DataError as exc:
            out.problem_from(exc)


def _known_format(obj: Any, path: str, line: int) -> str:
    """The format of the first readable record; none known stops reading (no guessing)."""
    fmt = detect_format(obj)
    if fmt is None:
        raise DataError("unknown dialogue format: expected 'messages' (chat), "
                        "'conversations' (ShareGPT) or 'instruction'/'output' (Alpaca); "
                        "name it with --format", path, line)
    return fmt


def parse_dialogue(obj: Any, fmt: str, path: str, line: int) -> Dialogue:
    """One record in ``fmt`` → Dialogue, or a DataError located at ``path:line``."""
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object", path, line)
    parser = {"chat": _parse_chat, "sharegpt": _parse_sharegpt, "alpaca": _parse_alpaca}[fmt]
    messages, consumed = parser(obj, path, line)
    extra = {k: v for k, v in obj.items() if k not in consumed}
    return Dialogue(messages, line, path, extra)


def _text(value: Any, path: str, line: int, field: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {type(value).__name__}", path, line, field)
    return value


def _parse_chat(obj: dict, path: str, line: int) -> tuple[list[Message], set[str]]:
    raw = obj.get("messages")
    if not isinstance(raw, list) or not raw:
        raise DataError("'messages' must be a non-empty list", path, line, "messages")
    messages = []
    for i, item in enumerate(raw):
        field = f"messages[{i}]"
        if not isinstance(item, dict):
            raise DataError("expected an object with role and content", path, line, field)
        role = item.get("role")
        if role not in ROLES:
            raise DataError(f"role must be one of {list(ROLES)}, got {role!r}", path, line,
                            f"{field}.role")
        content = _text(item.get("content"), path, line, f"{field}.content")
        weight = item.get("weight")
        if weight is not None and weight not in (0, 1):
            raise DataError("weight must be 0 or 1", path, line, f"{field}.weight")
        extra = {k: v for k, v in item.items() if k not in ("role", "content", "weight")}
        messages.append(Message(role, content, weight, extra))
    return messages, {"messages"}


def _parse_sharegpt(obj: dict, path: str, line: int) -> tuple[list[Message], set[str]]:
    raw = obj.get("conversations")
    if not isinstance(raw, list) or not raw:
        raise DataError("'conversations' must be a non-empty list", path, line, "conversations")
    messages = []
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        messages.append(Message("system", obj["system"]))
    for i, item in enumerate(raw):
        field = f"conversations[{i}]"
        if not isinstance(item, dict):
            raise DataError("expected an object with from and value", path, line, field)
        role = SHAREGPT_ROLES.get(str(item.get("from", "")).lower())
        if role is None:
            raise DataError(f"unknown speaker {item.get('from')!r}", path, line, f"{field}.from")
        content = _text(item.get("value"), path, line, f"{field}.value")
        extra = {k: v for k, v in item.items() if k not in ("from", "value")}
        messages.append(Message(role, content, None, extra))
    return messages, {"conversations", "system"}


def _parse_alpaca(obj: dict, path: str, line: int) -> tuple[list[Message], set[str]]:
    instruction = _text(obj.get("instruction"), path, line, "instruction")
    extra_input = obj.get("input") or ""
    _text(extra_input, path, line, "input")
    output = _text(obj.get("output"), path, line, "output")
    prompt = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
    messages = []
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        messages.append(Message("system", obj["system"]))
    messages += [Message("user", prompt), Message("assistant", output)]
    return messages, {"instruction", "input", "output", "system"}


def dialogue_to_chat_json(dialogue: Dialogue) -> dict:
    """The chat-messages JSON form of a dialogue, extra fields included (round-trips)."""
    messages = []
    for m in dialogue.messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.weight is not None:
            item["weight"] = m.weight
        item.update(m.extra)
        messages.append(item)
    return {**dialogue.extra, "messages": messages}
