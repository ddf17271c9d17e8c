"""The whole tool loop with the official ``openai`` client on a real socket: a question, the
model's call, the client running a Python function and sending its result back as a
``tool`` message, then the reply; whole and streamed (``delta.tool_calls`` accumulated as
OpenAI's own examples do). A random model's words mean nothing, so the call is forced with
a named ``tool_choice`` and the answer with ``tool_choice="none"``; the test checks what
the SDK parses: ids linking call and result, finish reasons, usage, the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.runtime import BackgroundServer
from helpers import (TOOLS, ToolChat, db_rows, free_port, get_balance, served_chat,
                     wait_healthy)

openai = pytest.importorskip("openai")
KEY = "tool-secret"
QUESTION = [{"role": "user", "content": "what is my checking balance"}]
NAMED = {"type": "function", "function": {"name": "get_balance"}}


@pytest.fixture(scope="module")
def live(predictors, tmp_path_factory):
    db = tmp_path_factory.mktemp("tools_live") / "log.db"
    intent, chat = predictors
    app = create_app(ServeSettings(api_key=KEY, log_db=str(db)), intent, ToolChat(chat))
    with BackgroundServer(app) as server:
        server.db = db
        yield server


def run_calls(calls) -> list[dict]:
    """The client's side: run each requested function, one ``tool`` message per call."""
    functions = {"get_balance": get_balance}
    return [{"role": "tool", "tool_call_id": call["id"],
             "content": json.dumps(functions[call["function"]["name"]](
                 **json.loads(call["function"]["arguments"])))} for call in calls]


def ask_whole(client, messages, tool_choice, tools=TOOLS, max_tokens=6
              ) -> tuple[dict, str, object]:
    response = client.chat.completions.create(
        model=served_chat(client), messages=messages, tools=tools, tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=0)
    choice = response.choices[0]
    message = {"role": "assistant", "content": choice.message.content}
    if choice.message.tool_calls:
        message["tool_calls"] = [c.model_dump() for c in choice.message.tool_calls]
    return message, choice.finish_reason, response


def ask_streamed(client, messages, tool_choice, tools=TOOLS, max_tokens=6
                 ) -> tuple[dict, str, object]:
    stream = client.chat.completions.create(
        model=served_chat(client), messages=messages, tools=tools, tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=0, stream=True, stream_options={"include_usage": True})
    text, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for part in delta.tool_calls or []:
            call = calls.setdefault(part.index, {"id": "", "type": "function",
                                                 "function": {"name": "", "arguments": ""}})
            call["id"] += part.id or ""
            call["function"]["name"] += part.function.name or ""
            call["function"]["arguments"] += part.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    message = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return message, finish, usage


def tool_loop(client, ask, tools=TOOLS, call_tokens: int = 6
              ) -> tuple[list[dict], list[str], dict, dict]:
    """question → call → result → reply; (messages, finish reasons, first and last usage).
    ``call_tokens``: room for the call (a real model writes it token by token)."""
    messages = list(QUESTION)
    called, finish_call, first = ask(client, messages, NAMED, tools, call_tokens)
    messages += [called, *run_calls(called.get("tool_calls", []))]
    answered, finish_answer, last = ask(client, messages, "none", tools)
    return messages + [answered], [finish_call, finish_answer], first, last


@pytest.mark.parametrize("mode", ["whole", "streamed"])
def test_openai_client_runs_the_tool_loop(live, mode):
    client = openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0)
    messages, finishes, first, last = tool_loop(client,
                                                ask_whole if mode == "whole" else ask_streamed)
    _, called, result, answered = messages
    assert finishes[0] == "tool_calls" and finishes[1] in ("stop", "length")
    assert called["content"] is None
    (call,) = called["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_balance"
    assert json.loads(call["function"]["arguments"]) == {"account": "checking"}
    assert result["tool_call_id"] == call["id"]
    assert json.loads(result["content"])["balance"] == 125.0
    assert isinstance(answered["content"], str) and answered["content"].strip()
    assert "tool_calls" not in answered
    usage = getattr(last, "usage", last)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > getattr(first, "usage", first).prompt_tokens  # + call, result
    (logged,) = [r for r in db_rows(live.db)
                 if json.loads(r["messages"])[-1].get("tool_call_id") == call["id"]]
    history = json.loads(logged["messages"])
    assert history[1]["tool_calls"] == [call]
    assert history[2] == {**result, "name": "get_balance"}
    assert json.loads(logged["tools"]) == TOOLS and logged["reply"] == answered["content"]


@pytest.mark.parametrize("model", ["tiny", pytest.param("smollm2", marks=pytest.mark.slow)])
def test_tool_loop_against_a_server_process_with_a_real_model(model, request, tmp_path):
    """``dialogtune serve`` as its own process, the model's own decoding: no double (one
    function only: the prompt must fit the tiny model's 512 positions)."""
    folder = request.getfixturevalue("folder") if model == "tiny" else model
    port, db = free_port(), tmp_path / "log.db"
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "dialogtune.cli", "serve", "--chat", folder, "--port",
         str(port), "--log-db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DIALOGTUNE_API_KEY": KEY})
    try:
        wait_healthy(url, process)
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        for ask in (ask_whole, ask_streamed):
            # constrained decoding writes the named call whatever the weights; 120 tokens
            # hold it even in the tiny byte-level vocabulary
            messages, finishes, _, _ = tool_loop(client, ask, TOOLS[:1], call_tokens=120)
            assert finishes[0] == "tool_calls" and finishes[1] in ("stop", "length")
            assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]
            assert "tool_calls" not in messages[3]
    finally:
        process.terminate()
        process.wait(30)
    assert len(db_rows(db)) == 4
