"""Evaluating a chat model on tool-calling dialogues: the ``tool_calls`` and ``grounding``
blocks (``calls.py``, ``grounding.py``) over replies generated turn by turn.

Which turns: the trained assistant turns in file order, call turns and word turns alike,
up to (not including) the ``limit + 1``-th call turn, so call precision sees calls and
words in their natural mix. Each turn is generated from the reference dialogue before it
(teacher forcing: earlier reference calls and results in the context), greedily.

A run trained without tools (its summary's ``data.uses_tools`` is false) sees what it was
trained on: the same dialogues with tool messages and call-only turns removed
(:func:`strip_tools`), no tool list, and only the word turns of the same range, so the
``grounding`` block of both runs covers the same turns; it has no ``tool_calls`` block.
Grounding is always judged against the original dialogue and its tool results.

Calls need more room than words: every turn may write up to ``max(max_new_tokens, the
longest reference call in the data in tokens * 1.25 + 8)`` tokens (:func:`token_budget`),
for runs with and without tools alike (greedy decoding writes the same first tokens
whatever the budget, so a larger one only lets a call finish).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from ..data.encode.chat import TOOL_FIELDS, dialogue_tools, message_dicts
from ..data.records import Dialogue, Message
from ..data.tool_calls import ParsedReply, ToolCall, call_problems, function_specs, message_calls
from .calls import CallTurn, call_metrics
from .grounding import GroundingTurn, grounding_metrics
from ..data.values import result_texts


@dataclass
class ToolTurn:
    """One assistant turn to reproduce: the context the model sees, its tools, the
    reference's words and calls, and what the dialogue and its tools said before it."""

    context: list[dict]
    tools: list[dict] | None
    text: str
    calls: list[ToolCall]
    said: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    slot_values: list[str] = field(default_factory=list)
    dialogue_id: str = ""

    @property
    def reference(self) -> str:
        """The reference turn as text: its words, then its calls in the built-in form."""
        return "\n".join([self.text] * bool(self.text) + [c.to_text() for c in self.calls])


def strip_tools(messages: list[dict]) -> list[dict]:
    """``messages`` as a run trained without tools saw them: no tool results, no calls
    (an assistant turn that only calls is dropped, one with words keeps them)."""
    out = []
    for message in messages:
        if message["role"] == "tool" or (message.get("tool_calls")
                                         and not (message.get("content") or "").strip()):
            continue
        out.append({k: v for k, v in message.items() if k not in TOOL_FIELDS})
    return out


def without_tools(dialogue: Dialogue) -> Dialogue:
    """The dialogue as a run trained without tools saw it (for its perplexity)."""
    messages = [Message(m.role, m.content, m.weight,
                        {k: v for k, v in m.extra.items() if k not in TOOL_FIELDS})
                for m in dialogue.messages
                if m.role != "tool" and not (m.extra.get("tool_calls") and not m.content.strip())]
    extra = {k: v for k, v in dialogue.extra.items() if k != "tools"}
    return Dialogue(messages, dialogue.line, dialogue.source, extra)


def _said(message: dict, calls: list[ToolCall]) -> list[str]:
    """What a non-tool message states: its words and its calls' argument values."""
    texts = [message.get("content") or ""]
    for call in calls:
        texts += result_texts(json.dumps(call.arguments, ensure_ascii=False))
    return texts


def tool_turns(dialogues: list[Dialogue], limit: int, with_tools: bool = True
               ) -> list[ToolTurn]:
    """The turns to score (see the module docstring); without tools, word turns only."""
    turns: list[ToolTurn] = []
    call_turns = 0
    for number, dialogue in enumerate(dialogues):
        messages, tools = message_dicts(dialogue), dialogue_tools(dialogue)
        said, results, values = [], [], []
        for i, (message, record) in enumerate(zip(messages, dialogue.messages)):
            calls = message_calls(message) if message["role"] == "assistant" else []
            if message["role"] == "assistant" and record.weight != 0 and i > 0:
                call_turns += bool(calls)
                if call_turns > limit:
                    return turns
                if with_tools or not calls:
                    context = messages[:i] if with_tools else strip_tools(messages[:i])
                    turns.append(ToolTurn(context, tools if with_tools else None,
                                          message["content"], calls, list(said), list(results),
                                          list(values), str(dialogue.extra.get("id", number + 1))))
            if message["role"] == "tool":
                results += result_texts(message["content"])
            else:
                said += _said(message, calls)
            if message["role"] == "user":
                values += [s["value"] for s in record.extra.get("slots") or []
                           if isinstance(s, dict) and isinstance(s.get("value"), str)]
    return turns


def token_budget(tokenizer, dialogues: list[Dialogue], max_new_tokens: int) -> int:
    """New tokens allowed per turn: room for the longest reference call of the data."""
    longest = max((len(tokenizer("\n".join(c.to_text() for c in message_calls(m)),
                                 add_special_tokens=False)["input_ids"])
                   for d in dialogues for m in message_dicts(d) if m.get("tool_calls")),
                  default=0)
    return max(max_new_tokens, math.ceil(longest * 1.25) + 8 if longest else 0)


def respond_turns(predictor, turns: list[ToolTurn], max_new_tokens: int) -> list[ParsedReply]:
    """Greedy replies (words and calls) to each turn's context, with its tools."""
    return [predictor.respond(t.context, tools=t.tools, max_new_tokens=max_new_tokens,
                              temperature=0.0) for t in turns]


def shown(reply: ParsedReply) -> str:
    """A generated turn as text: its words, its calls, and call bodies that did not parse."""
    parts = [reply.content] * bool(reply.content) + [c.to_text() for c in reply.calls]
    return "\n".join(parts + [f"<tool_call>{body} (invalid)" for body in reply.invalid])


def call_turn(turn: ToolTurn, reply: ParsedReply) -> CallTurn:
    """A scored turn for ``calls.call_metrics``; schema checked against the turn's tools."""
    specs = function_specs(turn.tools)
    errors = sum(1 for call in reply.calls if call_problems(call, specs))
    return CallTurn(turn.calls, reply.calls, len(reply.invalid), errors)


def tool_blocks(turns: list[ToolTurn], replies: list[ParsedReply], with_tools: bool) -> dict:
    """``tool_calls`` (runs with tools) and ``grounding`` (word turns) of generated replies."""
    blocks = {}
    if with_tools:
        blocks["tool_calls"] = call_metrics([call_turn(t, r) for t, r in zip(turns, replies)])
    blocks["grounding"] = grounding_metrics([
        GroundingTurn(r.content, t.text, t.said, t.results)
        for t, r in zip(turns, replies) if not t.calls])
    return blocks
