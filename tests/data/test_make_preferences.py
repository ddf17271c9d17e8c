"""Preference data made from what a team has: the conversation log (``data export-logs
--format preference``) and a dialogue set (``data make-preferences``)."""

from __future__ import annotations

import json
import random

import pytest

from helpers import DIALOGUES, write_jsonl
from dialogtune.cli import main
from dialogtune.data.conversation_log import ConversationStore, Exchange
from dialogtune.data.formats.preference import read_preferences
from dialogtune.data.transform.log_export import export_logs
from dialogtune.data.transform.preferences import corrupt_reply, make_preferences

TOOLS = [{"type": "function", "function": {"name": "get_balance", "parameters": {
    "type": "object", "properties": {"account": {"type": "string"}}}}}]
TOOL_DIALOGUE = {"id": "t1", "tools": TOOLS, "messages": [
    {"role": "user", "content": "Balance of checking?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_balance", "arguments": "{\"account\": \"checking\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "name": "get_balance",
     "content": json.dumps({"balance": "$1,630.00", "savings": "$5,118.77",
                            "due": "March 3", "paid": "May 1"})},
    {"role": "assistant", "content": "Your checking balance is $1,630.00, due March 3."}]}
NO_VALUES = {"id": "n1", "messages": [{"role": "user", "content": "hello"},
                                      {"role": "assistant", "content": "Hi, how can I help?"}]}


def test_corruption_swaps_one_value_for_another_of_its_kind():
    known = ["Sending 20 dollars to Amir.", "Maria paid 50 dollars at 6 pm on March 1st."]
    seen = {corrupt_reply("Sending 20 dollars to Maria now.", known, random.Random(seed))
            for seed in range(20)}
    assert seen == {"Sending 50 dollars to Maria now.", "Sending 20 dollars to Amir now."}
    assert corrupt_reply("See you at 6 pm.", ["Open from 9 am."], random.Random(0)) == \
        "See you at 9 am."
    assert corrupt_reply("Hi, how can I help?", known, random.Random(0)) is None
    assert corrupt_reply("It is 20 dollars.", ["20 dollars"], random.Random(0)) is None


def test_pairs_from_a_dialogue_set_with_tools_are_deterministic(tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", [TOOL_DIALOGUE, NO_VALUES, *DIALOGUES])
    made = make_preferences(data, tmp_path / "a.jsonl", seed=3)
    again = make_preferences(data, tmp_path / "b.jsonl", seed=3)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert made.rows == again.rows and made.skipped["nothing to corrupt"] >= 1
    assert made.rows + sum(made.skipped.values()) == made.turns
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    tool_row = next(r for r in rows if r["id"] == "t1:3")
    assert tool_row["tools"] == TOOLS and tool_row["messages"][2]["role"] == "tool"
    assert tool_row["chosen"]["content"] == TOOL_DIALOGUE["messages"][3]["content"]
    assert tool_row["rejected"]["content"] in (
        "Your checking balance is $5,118.77, due March 3.",
        "Your checking balance is $1,630.00, due May 1.")
    assert len(read_preferences(tmp_path / "a.jsonl").preferences) == made.rows


def test_pairs_from_a_run_keep_only_replies_that_differ(tmp_path):
    data = write_jsonl(tmp_path / "chat.jsonl", DIALOGUES)
    said = iter(["Your balance is 120 dollars.", "Sending money now."] * 10)
    reply = lambda context, tools: {"role": "assistant", "content": next(said)}  # noqa: E731
    made = make_preferences(data, tmp_path / "p.jsonl", reply)
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert made.skipped == {"same as the reference": 1}  # d1's first reply was right
    assert all(r["rejected"]["content"] != r["chosen"]["content"] for r in rows)
    assert made.rows == len(rows) == made.turns - 1


def test_make_preferences_command_from_a_run(folder, tmp_path, capsys):
    data = write_jsonl(tmp_path / "chat.jsonl", DIALOGUES[:1])
    out = tmp_path / "out" / "prefs.jsonl"
    assert main(["data", "make-preferences", str(data), "--output", str(out), "--from",
                 folder]) == 0
    assert "pairs from 2 reply turns" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["chosen"]["content"] != r["rejected"].get("content") for r in rows)


def test_export_logs_as_preference_pairs_and_kto_rows(tmp_path, capsys):
    store = ConversationStore(tmp_path / "log.db")
    ask = lambda id_, reply, **kw: store.log(Exchange(  # noqa: E731
        id_, "chat", [{"role": "user", "content": "What is my balance?"}], reply, "tiny", **kw))
    ask("fixed", "It is $70.")
    ask("liked", "It is $120.")
    ask("disliked", "No idea.")
    ask("unrated", "It is $120.")
    ask("called", "", tools=TOOLS, tool_calls=[{"id": "c1", "type": "function", "function": {
        "name": "get_balance", "arguments": "{\"account\": \"checking\"}"}}])
    store.add_feedback("fixed", "down", corrected_reply="It is $120.")
    store.add_feedback("liked", "up")
    store.add_feedback("disliked", "down")
    store.add_feedback("called", "up")
    store.close()
    out = tmp_path / "prefs.jsonl"
    assert main(["data", "export-logs", str(tmp_path / "log.db"), "--output", str(out),
                 "--format", "preference"]) == 0
    assert "wrote 4 preference examples" in capsys.readouterr().out
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"fixed", "liked", "disliked", "called"}
    assert (rows["fixed"]["chosen"]["content"], rows["fixed"]["rejected"]["content"]) == (
        "It is $120.", "It is $70.")
    assert (rows["liked"]["label"], rows["disliked"]["label"]) == (True, False)
    assert rows["called"]["completion"]["tool_calls"][0]["function"]["name"] == "get_balance"
    records = read_preferences(out).preferences
    assert sum(r.paired for r in records) == 1 and len(records) == 4
    reviewed = tmp_path / "reviewed.jsonl"  # every rating is a person's verdict: all kept
    assert export_logs(tmp_path / "log.db", reviewed, "preference", True) == 4
    assert json.loads(reviewed.read_text().splitlines()[2])["label"] is False  # thumbs-down


@pytest.mark.parametrize("reviewed_only", [True, False])
def test_unrated_exchanges_never_become_preferences(tmp_path, reviewed_only):
    store = ConversationStore(tmp_path / "log.db")
    store.log(Exchange("u", "chat", [{"role": "user", "content": "hi"}], "hello", "tiny"))
    store.close()
    assert export_logs(tmp_path / "log.db", tmp_path / "p.jsonl", "preference",
                       reviewed_only) == 0
