"""A chat reply on the wire: the request waiting for it, its words and calls, the
``chat.completion.chunk`` events and the finish reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..data.tool_calls import ToolCall
from .tools import ToolPlan
from .generation import GenerationJob


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def sse(payload: dict | str) -> str:
    """One server-sent event carrying JSON (or the literal ``[DONE]``)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


@dataclass
class PendingReply:
    """A validated chat request whose reply is queued (``job``) or fixed (``fallback``)."""

    id: str
    created: int
    started: float
    messages: list[dict]
    options: dict
    turn: dict
    prompt_tokens: int = 0  # as the model sees the prompt (special tokens neutralized)
    job: GenerationJob | None = None
    fallback: str | None = None
    tools: ToolPlan | None = None  # the request offers functions to call
    chat: Any = None  # the chat model answering (the one the request named)


@dataclass
class Reply:
    """A reply as it is generated: its words and the calls it makes."""

    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)

    def add(self, item: str | ToolCall) -> dict:
        """Take the next piece (words or a call); returns its stream ``delta``."""
        if isinstance(item, ToolCall):
            self.calls.append(item)
            return call_delta(len(self.calls) - 1, item)
        self.text += item
        return {"content": item}

    def generated(self) -> str:
        """What the model wrote (calls in the built-in form), for the token count."""
        return "".join([self.text, *(call.to_text() for call in self.calls)])

    def tool_calls(self) -> list[dict] | None:
        return [call.to_openai() for call in self.calls] or None

    def message(self) -> dict:
        """The ``choices[0].message``: content null when the reply only calls tools."""
        message = {"role": "assistant",
                   "content": None if self.calls and not self.text else self.text}
        if self.calls:
            message["tool_calls"] = self.tool_calls()
        return message


def call_delta(index: int, call: ToolCall) -> dict:
    """A stream chunk's ``delta`` carrying one whole call, as OpenAI streams them."""
    item = call.to_openai()
    return {"tool_calls": [{"index": index, **item}]}


def chunk(pending: PendingReply, model: str, delta: dict, finish: str | None = None,
          with_turn: bool = False) -> dict:
    """One ``chat.completion.chunk`` (the first and last carry the turn's NLU reading)."""
    event = {"id": pending.id, "object": "chat.completion.chunk",
             "created": pending.created, "model": str(model),
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                          "logprobs": None}]}
    if with_turn:
        event["dialogtune"] = pending.turn
    return event


def finish_reason(pending: PendingReply, reply: Reply, usage: dict) -> str:
    """"tool_calls" when the reply calls tools; "length" when max_tokens ran out or the
    generation was cut at its deadline; "stop" otherwise."""
    if pending.fallback is not None:
        return "stop"
    if pending.job.truncated:
        return "length"
    if reply.calls:
        return "tool_calls"
    spent = usage["completion_tokens"] >= pending.options["max_new_tokens"]
    return "length" if spent else "stop"


async def aiter_items(source) -> AsyncIterator:
    """Iterate a list or an async iterator alike."""
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item
