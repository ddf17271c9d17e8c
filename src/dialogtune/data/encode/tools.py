"""Tool-calling dialogues → the messages a chat template renders.

A model whose own chat template renders ``tools`` (Qwen2.5, Hermes, Llama 3.1…) gets them
through the template: the tool list as ``tools=``, calls as structured ``tool_calls``.
Templates that ignore ``tools`` (SmolLM2's and the built-in ChatML) get the documented
built-in format instead, written into plain messages before templating:

- the tools are listed in the system turn, one compact JSON line per function
  (``tool_lines``), after a one-line instruction naming the call format;
- an assistant call is its text ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  (after any words the turn says first), so it is trained like any reply;
- a result is its own turn of role ``tool``, never trained (only assistant turns are).

In both forms a call's arguments are written in the order its function's schema lists
them (``tool_calls.in_schema_order``): constrained decoding can only write that order.

Compact on purpose: SGD's banking functions take 143 SmolLM2 tokens each as OpenAI JSON,
115 without JSON's spaces and 62 compact (restaurants: 205 / 165 / 81), and results are
re-dumped without spaces (lossless; restaurant dialogues 49 tokens shorter on average).
Together they cut the assistant turns a 1,024-token limit drops on SGD restaurants from
1,002 to 357 of 2,960 (benchmarks/tools_length.py, RESULTS.md); the chat task's 2,048
default keeps them all.
"""

from __future__ import annotations

import json
from typing import Any

from ..tool_calls import (ToolCall, calls_from_openai, function_specs, in_schema_order,
                          openai_tools)

PROBE_TOOL = "dialogtune_probe_function"
TOOLS_INTRO = ("You can call these tools. To call one, reply with "
               '<tool_call>{"name": <tool name>, "arguments": <JSON object>}</tool_call>.')


def uses_tools(messages: list[dict], tools: Any) -> bool:
    """Whether a conversation involves tools at all (a list, a call or a result)."""
    return bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def dialogues_use_tools(dialogues: list) -> bool:
    """Whether any of the ``Dialogue`` records has tools, a call or a result (a run
    trained on such data records it, so evaluation gives it the tools again)."""
    return any(d.extra.get("tools") or any(m.role == "tool" or m.extra.get("tool_calls")
                                           for m in d.messages) for d in dialogues)


def template_renders_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template writes a ``tools`` list into the prompt
    (probed once with a made-up function name, then remembered on the tokenizer)."""
    known = getattr(tokenizer, "_dialogtune_renders_tools", None)
    if known is None:
        probe = [{"type": "function", "function": {"name": PROBE_TOOL, "parameters": {
            "type": "object", "properties": {}}}}]
        try:
            text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                                 tools=probe, tokenize=False)
            known = PROBE_TOOL in text
        except Exception:  # a template that refuses tools does not render them
            known = False
        tokenizer._dialogtune_renders_tools = known
    return known


def compact_schema(parameters: dict) -> dict:
    """A function's parameters in few tokens: each property's enum (or its type when not
    a string), the required keys; descriptions of single properties are dropped."""
    properties = {}
    for key, prop in (parameters.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        if "enum" in prop:
            properties[key] = prop["enum"]
        else:
            properties[key] = prop.get("type", "string")
    return {"properties": properties, "required": list(parameters.get("required") or [])}


def tool_lines(tools: Any, detail: str = "compact") -> str:
    """One JSON line per function: ``compact`` (name, description, ``compact_schema``)
    or ``full`` (the OpenAI function object as given)."""
    lines = []
    for spec in function_specs(tools).values():
        if detail == "full":
            item = spec
        else:
            item = {"name": spec["name"], "description": spec.get("description", ""),
                    **compact_schema(spec["parameters"])}
        lines.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines)


def compact_result(content: str) -> str:
    """A tool result without JSON's optional spaces (unchanged when not JSON)."""
    try:
        return json.dumps(json.loads(content), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError):
        return content


def builtin_messages(messages: list[dict], tools: Any, detail: str = "compact") -> list[dict]:
    """Plain ``{"role", "content"}`` messages in the built-in format (see module doc)."""
    out, specs = [], function_specs(tools)
    if tools:
        block = f"{TOOLS_INTRO}\n{tool_lines(tools, detail)}"
        if messages and messages[0].get("role") == "system":
            first, messages = messages[0], messages[1:]
            block = f"{first.get('content') or ''}\n\n{block}".lstrip()
        out.append({"role": "system", "content": block})
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            calls = [in_schema_order(c, specs).to_text()
                     for c in calls_from_openai(message["tool_calls"])]
            content = "\n".join(([content.strip()] if content.strip() else []) + calls)
        elif role == "tool":
            content = compact_result(content)
        out.append({"role": role, "content": content})
    return out


def structured_messages(messages: list[dict], tools: Any = None) -> list[dict]:
    """Messages for a template that renders tools itself: arguments as objects (the
    Hugging Face convention) in their schema's order, other fields as given."""
    out, specs = [], function_specs(tools)
    for message in messages:
        if message.get("tool_calls"):
            calls = [in_schema_order(c, specs) for c in calls_from_openai(message["tool_calls"])]
            message = {**message, "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}} for c in calls]}
        out.append(message)
    return out


def template_messages(tokenizer, messages: list[dict], tools: Any = None
                      ) -> tuple[list[dict], dict]:
    """(messages, extra ``apply_chat_template`` keywords) for this tokenizer's template."""
    if not uses_tools(messages, tools):
        return messages, {}
    if template_renders_tools(tokenizer):
        return structured_messages(messages, tools), ({"tools": openai_tools(tools)} if tools else {})
    return builtin_messages(messages, tools), {}


def call_text(calls: list[ToolCall]) -> str:
    """The built-in text of an assistant turn that makes ``calls``."""
    return "\n".join(c.to_text() for c in calls)
