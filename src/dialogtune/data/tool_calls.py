"""Tools and tool calls: the OpenAI function-calling shapes, read, written and checked.

One representation for every stage: a dialogue's ``tools`` stay the OpenAI list
(``[{"type": "function", "function": {"name", "description", "parameters"}}]``) in
``Dialogue.extra["tools"]``; an assistant message's calls stay OpenAI ``tool_calls`` in its
``extra`` and a result is a message of role ``tool`` with ``tool_call_id`` and ``name``.
This module turns those into ``ToolCall`` values, checks a call against its function's JSON
schema (``jsonschema``: required keys, enums, types) and reads calls back from generated
text in the built-in format ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
(the Hermes / Qwen convention, so models tuned elsewhere read it too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL_TEXT = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|$)",
                        re.DOTALL)


class ToolCallError(ValueError):
    """A malformed tool or call; ``field`` says where inside the message or record."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ToolCall:
    """One function call: its name and parsed arguments (``id`` links the result)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def to_openai(self, fallback_id: str = "call_1") -> dict:
        """The OpenAI ``tool_calls`` item (arguments as a JSON string, as OpenAI sends)."""
        return {"id": self.id or fallback_id, "type": "function",
                "function": {"name": self.name,
                             "arguments": json.dumps(self.arguments, ensure_ascii=False)}}

    def to_text(self) -> str:
        """The built-in text form of the call (what the model is trained to write)."""
        body = json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)
        return f"{CALL_OPEN}{body}{CALL_CLOSE}"


def function_specs(tools: Any) -> dict[str, dict]:
    """``{name: function}`` of an OpenAI ``tools`` list; bare function objects
    (``[{"name", "parameters"}]``, as ShareGPT files and OpenAI's legacy ``functions``
    carry them) are accepted too. ToolCallError names the bad item."""
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise ToolCallError("'tools' must be a list of function definitions", "tools")
    specs: dict[str, dict] = {}
    for i, item in enumerate(tools):
        function = item.get("function", item) if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise ToolCallError("a tool needs a 'function' with a 'name'", f"tools[{i}]")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise ToolCallError("'parameters' must be a JSON schema object",
                                f"tools[{i}].function.parameters")
        specs[name] = {**function, "parameters": parameters}
    return specs


def in_schema_order(call: ToolCall, specs: dict[str, dict]) -> ToolCall:
    """``call`` with its arguments (and those of nested objects) in the order its
    function's schema lists them; keys the schema does not list follow as given.

    Constrained decoding writes an object's keys in schema order only (llguidance fixes
    it), so a model must be trained on that order too. Trained on sgd_restaurants_tools'
    alphabetical order instead, SmolLM2 was made to start with ``restaurant_name``, then
    closed the object after ``time`` as it had learnt to: ``date`` and ``party_size`` were
    missing from all 18 paired bookings and 3 of 40 calls had exact arguments.
    """
    spec = specs.get(call.name)
    if spec is None:
        return call
    return ToolCall(call.name, _ordered(call.arguments, spec["parameters"]), call.id)


def _ordered(value: Any, schema: Any) -> Any:
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return value
        keys = [k for k in properties if k in value] + [k for k in value if k not in properties]
        return {k: _ordered(value[k], properties.get(k)) for k in keys}
    if isinstance(value, list):
        return [_ordered(item, schema.get("items")) for item in value]
    return value


def openai_tools(tools: Any) -> list[dict]:
    """``tools`` in the OpenAI form (bare functions wrapped as ``{"type": "function"}``)."""
    return [{"type": "function", "function": spec} for spec in function_specs(tools).values()]


def parse_arguments(raw: Any, where: str) -> dict[str, Any]:
    """A call's arguments: a JSON object, given as a string (OpenAI) or already parsed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolCallError(f"arguments are not valid JSON: {exc.msg}", where) from None
    if not isinstance(raw, dict):
        raise ToolCallError("arguments must be a JSON object", where)
    return raw


def calls_from_openai(raw: Any, where: str = "tool_calls") -> list[ToolCall]:
    """``ToolCall``s of an OpenAI ``tool_calls`` list (or one legacy ``function_call``)."""
    if isinstance(raw, dict):  # legacy {"name", "arguments"}
        raw = [{"type": "function", "function": raw}]
    if not isinstance(raw, list) or not raw:
        raise ToolCallError("'tool_calls' must be a non-empty list", where)
    calls = []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise ToolCallError("a call needs 'function' with a 'name'", f"{where}[{i}]")
        arguments = parse_arguments(function.get("arguments", {}),
                                    f"{where}[{i}].function.arguments")
        call_id = item.get("id")
        calls.append(ToolCall(name, arguments, call_id if isinstance(call_id, str) else None))
    return calls


def message_calls(message: dict) -> list[ToolCall]:
    """The calls an assistant message makes (none when it has no ``tool_calls``)."""
    raw = message.get("tool_calls")
    return calls_from_openai(raw) if raw else []


def call_problems(call: ToolCall, specs: dict[str, dict]) -> list[str]:
    """What is wrong with ``call`` against the defined functions: an unknown name, or each
    way its arguments break the function's JSON schema (missing required key, value not
    in the enum, wrong type). Empty when the call is valid."""
    from jsonschema import Draft202012Validator

    spec = specs.get(call.name)
    if spec is None:
        known = ", ".join(sorted(specs)) or "none"
        return [f"calls undefined tool '{call.name}' (defined: {known})"]
    validator = Draft202012Validator(spec["parameters"])
    problems = []
    for error in sorted(validator.iter_errors(call.arguments), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        problems.append(f"{call.name}: {where + ': ' if where else ''}{error.message}")
    return problems


@dataclass
class ParsedReply:
    """Generated text split into what it says and the calls it makes."""

    content: str
    calls: list[ToolCall]
    invalid: list[str]  # call bodies that are not JSON with a name and object arguments


def parse_reply(text: str) -> ParsedReply:
    """Read ``<tool_call>{...}</tool_call>`` blocks out of generated text; the rest is the
    reply's content. An unterminated last block is read to the end of the text."""
    calls, invalid = [], []
    for match in _CALL_TEXT.finditer(text):
        body = match.group(1).strip()
        try:
            obj = json.loads(body)
            name = obj.get("name") if isinstance(obj, dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError("no name")
            arguments = parse_arguments(obj.get("arguments", obj.get("parameters", {})), "")
            calls.append(ToolCall(name, arguments, f"call_{len(calls) + 1}"))
        except (ValueError, ToolCallError):
            invalid.append(body)
    content = _CALL_TEXT.sub("", text).strip()
    return ParsedReply(content, calls, invalid)
