"""Tool calling in the server: what a request offers, how its reply is generated and read.

A request with ``tools`` is answered by ``ChatPredictor.stream_respond``, which yields the
reply's words, then each call it makes (``ToolCall``); ``tool_choice`` is passed through
(the predictor constrains decoding to it) and ``none`` also drops any call here. Each call
gets a fresh ``call_…`` id, unique across the conversation, so a later ``tool`` message
links to exactly one call. Stop strings cut the words; a stop ends the reply, calls too.

Tool definitions come from the client and land in the prompt: their special-token
strings are made plain text (``encode.chat.neutralize``) like message contents are.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..data.encode.chat import neutralize_value
from ..data.tool_calls import ToolCall
from .errors import APIError


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolPlan:
    """The functions a request offers (as sent, for the log; plain, for the prompt) and
    its ``tool_choice``."""

    offered: list[dict]
    prompt_tools: list[dict]
    choice: Any = "auto"

    def responder(self, chat):
        """The worker's generation function for this request (see ``tool_reply``)."""
        return partial(tool_reply, chat, self)


def plan_tools(request, tokenizer) -> ToolPlan | None:
    """The request's tools, or None when it offers none (the reply is then plain text)."""
    if not request.tools:
        return None
    offered = [tool.as_dict() for tool in request.tools]
    return ToolPlan(offered, neutralize_value(tokenizer, offered), request.tool_choice or "auto")


def link_results(messages: list[dict]) -> list[dict]:
    """Each ``tool`` message must answer a call of the assistant turn before it (a 400
    naming the message otherwise); it gets that call's function ``name``."""
    open_calls: dict[str, str] = {}
    for i, message in enumerate(messages):
        if message.get("tool_calls"):
            open_calls = {c["id"]: c["function"]["name"] for c in message["tool_calls"]}
        elif message["role"] == "tool":
            name = open_calls.pop(message["tool_call_id"], None)
            if name is None:
                raise APIError(400, f"messages.{i}.tool_call_id: a tool message must answer "
                               "a call of the assistant turn before it (none open has id "
                               f"'{message['tool_call_id']}')", "invalid_tool_message",
                               f"messages.{i}.tool_call_id")
            message["name"] = name
        else:
            open_calls = {}
    return messages


def message_chars(messages: list[dict]) -> int:
    """Characters a client sent: contents and the arguments of earlier calls."""
    return sum(len(m["content"]) + sum(len(c["function"]["arguments"])
                                       for c in m.get("tool_calls") or ()) for m in messages)


def tool_reply(chat, plan: ToolPlan, messages: list[dict], cancel: threading.Event | None = None,
               deadline: float | None = None, stop: list[str] | None = None,
               **options) -> Iterator[str | ToolCall]:
    """Words (``str``) and calls (``ToolCall``, fresh ids) of the next assistant turn."""
    items = chat.stream_respond(messages, tools=plan.prompt_tools, tool_choice=plan.choice,
                                cancel=cancel, deadline=deadline, **options)
    try:
        for item in _until_stop(items, stop or []):
            if isinstance(item, ToolCall):
                if plan.choice != "none":
                    yield dataclasses.replace(item, id=new_call_id())
            elif item:
                yield item
    finally:
        getattr(items, "close", lambda: None)()  # ends (and joins) the generation


def _until_stop(items: Iterator, stops: list[str]) -> Iterator:
    """Pass words and calls through until a stop string appears in the words (a partial
    match at the end of the words is held back until the next piece decides)."""
    held, hold = "", max((len(s) for s in stops), default=1) - 1
    for item in items:
        if not isinstance(item, str):
            if held:
                yield held
                held = ""
            yield item
            continue
        held += item
        hits = [held.find(s) for s in stops if s in held]
        if hits:
            yield held[:min(hits)]
            return
        if len(held) > hold:
            yield held[:len(held) - hold]
            held = held[len(held) - hold:]
    if held:
        yield held
