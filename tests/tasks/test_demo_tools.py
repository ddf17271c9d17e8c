"""The tool demo: its own logic without a model (the fake backend, the held-out questions it
picks, one exchange: call → backend → reply from the result, and the grounding count), and
its real path on the embedded model (slow)."""

from __future__ import annotations

import json

import pytest

from dialogtune.data.formats import read_dialogues
from dialogtune.data.tool_calls import ParsedReply, ToolCall
from dialogtune.demo_tools import (SHOWN_TOOLS, backend, calling_turns, exchange, grounded,
                                   held_out_questions, looked_up)
from helpers import EXAMPLES


class Scripted:
    """Answers ``respond`` with the given replies in turn and keeps what it was sent."""

    def __init__(self, *replies: ParsedReply):
        self.replies, self.sent = list(replies), []

    def respond(self, messages, tools=None, max_new_tokens=128):
        self.sent.append(messages)
        return self.replies.pop(0)


def test_backend_is_fixed_per_question_and_differs_between_questions():
    first = backend("get_balance", {"account_id": "LM-10000001"})
    assert first == backend("get_balance", {"account_id": "LM-10000001"})
    assert first["account_id"] == "LM-10000001" and first["balance"].startswith("$")
    assert first != backend("get_balance", {"account_id": "LM-10000002"})
    assert looked_up(first, {"account_id": "LM-10000001"}) == [first["balance"],
                                                                 first["due_date"]]
    assert "error" in backend("no_such_tool", {})


def test_held_out_questions_stand_alone():
    dialogues = read_dialogues(EXAMPLES / "tools_test.jsonl")
    questions = held_out_questions(dialogues)
    assert len(questions) == len(SHOWN_TOOLS)
    context = {m[-1]["content"]: m for m, _, _ in calling_turns(dialogues)}
    for (messages, tools), name in zip(questions, SHOWN_TOOLS):
        assert [m["role"] for m in messages] == ["system", "user"] and tools
        question = messages[-1]["content"]
        assert not context[question][-2]["content"].endswith("?")  # answers no question
        assert ("LM-" if name == "get_balance" else "555-") in question
    answers = [m for m, _, _ in calling_turns(dialogues) if m[-2]["content"].endswith("?")]
    assert answers  # there were answers to skip ("It's Boise")


def test_exchange_runs_the_call_and_counts_the_values_the_reply_states():
    tools = json.loads((EXAMPLES / "tools.json").read_text(encoding="utf-8"))
    arguments = {"account_id": "LM-20000002"}
    result = backend("get_balance", arguments)
    model = Scripted(ParsedReply("", [ToolCall("get_balance", arguments, "call_1")], []),
                     ParsedReply(f"You owe {result['balance']}.", [], []))
    question = [{"role": "user", "content": "What do I owe on LM-20000002?"}]
    found = exchange(model, question, tools)
    assert found["results"] == [result] and found["problems"] == []
    assert model.sent[1][-1] == {"role": "tool", "tool_call_id": "call_1",
                                 "name": "get_balance", "content": json.dumps(result)}
    assert grounded(found) == (1, 2)  # the balance, not the due date


def test_a_call_that_breaks_the_schema_is_reported():
    tools = json.loads((EXAMPLES / "tools.json").read_text(encoding="utf-8"))
    model = Scripted(ParsedReply("", [ToolCall("block_sim", {"phone_number": "555-0100",
                                                             "reason": "broken"})], []),
                     ParsedReply("Blocked.", [], []))
    found = exchange(model, [{"role": "user", "content": "block 555-0100"}], tools)
    assert any("reason" in p for p in found["problems"])
    assert grounded(found) == (0, 1)


@pytest.mark.slow
def test_tools_demo_on_the_embedded_model(tmp_path, capsys, monkeypatch):
    """The demo's real path, shortened to 2 training steps: train, question both models,
    print; a second call reuses the finished run."""
    import dialogtune.demo_tools as demo_tools

    monkeypatch.setattr(demo_tools, "TRAIN_STEPS", 2)
    headline = demo_tools.run_tools_demo(tmp_path)
    printed = capsys.readouterr().out
    assert headline["questions"] == len(SHOWN_TOOLS) and "2 steps" in printed
    assert printed.count("  user: ") == len(SHOWN_TOOLS) and "base says:" in printed
    assert 0 <= headline["stated"] <= headline["values"]
    demo_tools.run_tools_demo(tmp_path)
    assert "reusing the finished run" in capsys.readouterr().out
