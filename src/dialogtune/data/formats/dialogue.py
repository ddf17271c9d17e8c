"""Dialogue reader: chat-messages JSONL, ShareGPT and Alpaca → Dialogue records.

The format is detected from the first readable record unless named. Every record is
validated; a bad one is a problem with file, line and field (see ``base``).

Tool calling (``data.tool_calls``): chat records may carry ``tools`` and messages with
``tool_calls`` (assistant) and role ``tool`` — the OpenAI fine-tuning form, whose legacy
``functions`` / ``function_call`` / role ``function`` are read into the same shape;
ShareGPT's ``function_call`` / ``observation`` turns and ``tools`` (a JSON string, as
LLaMA-Factory writes it) too. Every dialogue comes out in one form: ``extra["tools"]`` in
OpenAI form, ``tool_calls`` with ids, results with ``tool_call_id`` and ``name``.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import DataError
from ..files import json_records
from ..records import Dialogue, Message
from ..tool_calls import ToolCallError, calls_from_openai, openai_tools
from .base import Items, Loaded, ReadOptions

FORMATS = ("chat", "sharegpt", "alpaca")
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "model": "assistant", "bot": "assistant",
                  "function_call": "assistant", "observation": "tool", "tool": "tool"}


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
            out.keep(parse_dialogue(obj, fmt, out.path, line, out.strict), obj)
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


def parse_dialogue(obj: Any, fmt: str, path: str, line: int, strict: bool = True
                   ) -> Dialogue:
    """One record in ``fmt`` → Dialogue, or a DataError located at ``path:line``.
    ``strict`` False keeps a tool result that answers no call (``data check`` lists it)."""
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object", path, line)
    parser = {"chat": _parse_chat, "sharegpt": _parse_sharegpt, "alpaca": _parse_alpaca}[fmt]
    messages, consumed = parser(obj, path, line)
    extra = {k: v for k, v in obj.items() if k not in consumed and k != "functions"}
    tools = _tools_of(obj, path, line)
    if tools:
        extra["tools"] = tools
    else:
        extra.pop("tools", None)
    return Dialogue(_link_results(messages, path, line, strict), line, path, extra)


def _tools_of(obj: dict, path: str, line: int) -> list[dict] | None:
    """The record's functions in OpenAI form: ``tools`` (a list, or a JSON string as
    ShareGPT files hold it) or the legacy ``functions``."""
    raw, field = (obj.get("tools"), "tools") if obj.get("tools") else (obj.get("functions"),
                                                                        "functions")
    if not raw:
        return None
    try:
        if isinstance(raw, str):
            raw = json.loads(raw)
        return openai_tools(raw)
    except (ValueError, ToolCallError) as exc:
        raise DataError(f"{field} is not a list of function definitions: {exc}", path, line,
                        getattr(exc, "field", None) or field) from None


def _link_results(messages: list[Message], path: str, line: int, strict: bool = True
                  ) -> list[Message]:
    """Ids on every call (``call_N`` where missing) and each result's ``tool_call_id`` and
    ``name`` taken from the oldest call it can answer when it has none (ShareGPT
    observations and legacy ``function`` messages name no call). A result answering no
    call is an error when ``strict``, else left unlinked for ``data check`` to report."""
    open_calls: list[dict] = []
    count = 0
    for i, message in enumerate(messages):
        calls = message.extra.get("tool_calls")
        if calls:
            for call in calls:
                count += 1
                call.setdefault("id", f"call_{count}")
                call.setdefault("type", "function")
            open_calls = list(calls)
        elif message.role == "tool":
            answered = _answered_call(message, open_calls)
            if answered is None and not strict:
                continue
            if answered is None:
                raise DataError("a tool result with no call before it to answer", path, line,
                                f"messages[{i}]")
            message.extra.setdefault("tool_call_id", answered["id"])
            message.extra.setdefault("name", answered["function"]["name"])
    return messages


def _answered_call(message: Message, open_calls: list[dict]) -> dict | None:
    wanted = message.extra.get("tool_call_id")
    for call in open_calls:
        if wanted is None or call.get("id") == wanted:
            open_calls.remove(call)
            return call
    return None


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
        role = "tool" if item.get("role") == "function" else item.get("role")  # legacy name
        if role not in ROLES:
            raise DataError(f"role must be one of {list(ROLES)}, got {role!r}", path, line,
                            f"{field}.role")
        calls = _calls_of(item, path, line, field)
        content = "" if calls and item.get("content") is None else _text(
            item.get("content"), path, line, f"{field}.content")
        weight = item.get("weight")
        if weight is not None and weight not in (0, 1):
            raise DataError("weight must be 0 or 1", path, line, f"{field}.weight")
        extra = {k: v for k, v in item.items()
                 if k not in ("role", "content", "weight", "function_call", "tool_calls")}
        if calls:
            extra["tool_calls"] = calls
        messages.append(Message(role, content, weight, extra))
    return messages, {"messages"}


def _calls_of(item: dict, path: str, line: int, field: str) -> list[dict] | None:
    """An assistant message's calls in OpenAI form (``tool_calls`` or the legacy
    ``function_call``); arguments must parse as a JSON object."""
    raw, key = (item.get("tool_calls"), "tool_calls") if item.get("tool_calls") else (
        item.get("function_call"), "function_call")
    if not raw:
        return None
    if item.get("role") != "assistant":
        raise DataError("only assistant messages make tool calls", path, line, f"{field}.{key}")
    try:
        calls = calls_from_openai(raw, key)
    except ToolCallError as exc:
        raise DataError(str(exc), path, line, f"{field}.{exc.field}") from None
    return [{k: v for k, v in c.to_openai("").items() if k != "id" or v} for c in calls]


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
        speaker = str(item.get("from", "")).lower()
        role = SHAREGPT_ROLES.get(speaker)
        if role is None:
            raise DataError(f"unknown speaker {item.get('from')!r}", path, line, f"{field}.from")
        content = _text(item.get("value"), path, line, f"{field}.value")
        extra = {k: v for k, v in item.items() if k not in ("from", "value")}
        if speaker == "function_call":  # value: {"name", "arguments"} or a list of them
            extra["tool_calls"] = _sharegpt_calls(content, path, line, f"{field}.value")
            content = ""
        messages.append(Message(role, content, None, extra))
    return messages, {"conversations", "system"}


def _sharegpt_calls(value: str, path: str, line: int, field: str) -> list[dict]:
    """A ShareGPT ``function_call`` turn's calls in OpenAI form (an ``id`` beside a call's
    name is kept: ``data convert`` writes one so results stay linked)."""
    try:
        raw = json.loads(value)
        items = raw if isinstance(raw, list) else [raw]
        calls = calls_from_openai([{"type": "function", "function": item,
                                    "id": item.get("id") if isinstance(item, dict) else None}
                                   for item in items], field)
    except ValueError as exc:
        raise DataError(f"a function_call turn must hold JSON: {exc}", path, line,
                        field) from None
    return [{k: v for k, v in c.to_openai("").items() if k != "id" or v} for c in calls]


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
