"""``data check`` on tool-calling dialogues: calls against the tools, results against the
calls, malformed definitions, by file line and turn, in chat, ShareGPT and OpenAI legacy
form; and what the other dialogue findings make of calls and results."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from dialogtune.data.quality.check import CheckOptions, check_files
from dialogtune.data.quality.report import print_summary, render_html
from helpers import build_tokenizer

BALANCE = {"name": "CheckBalance", "description": "The balance of an account",
           "parameters": {"type": "object", "properties": {
               "account_type": {"type": "string", "enum": ["checking", "savings"]}},
               "required": ["account_type"]}}
TRANSFER = {"name": "TransferMoney", "description": "Send money",
            "parameters": {"type": "object", "properties": {
                "amount": {"type": "number"}, "recipient": {"type": "string"}},
                "required": ["amount", "recipient"]}}
TOOLS = [{"type": "function", "function": f} for f in (BALANCE, TRANSFER)]


def call(name: str, arguments, call_id: str | None = None) -> dict:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {**({"id": call_id} if call_id else {}), "type": "function",
            "function": {"name": name, "arguments": raw}}


def calling(*calls) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": list(calls)}


def result(content: str, call_id: str | None = None) -> dict:
    return {"role": "tool", "content": content, **({"tool_call_id": call_id} if call_id else {})}


USER = {"role": "user", "content": "What is my balance?"}
REPLY = {"role": "assistant", "content": "You have 5 dollars."}


def chat(*messages, tools=TOOLS) -> str:
    return json.dumps({**({"tools": tools} if tools else {}), "messages": list(messages)})


BROKEN_SCHEMA = {"type": "function", "function": {
    "name": "Broken", "parameters": {"type": "object", "properties": {"x": {"type": "strin"}},
                                     "required": ["y"]}}}
CHAT_LINES = [
    chat(USER, calling(call("CheckBalance", {"account_type": "checking"}, "c1")),
         result('{"balance": 5}', "c1"), REPLY),                                    # 1 fine
    chat(USER, calling(call("CloseAccount", {})), result("closed"), REPLY),          # 2
    chat(USER, calling(call("CheckBalance", {"account_type": "gold"}),               # 3
                       call("TransferMoney", {"amount": "ten"})),
         result("no"), result("no"), REPLY),
    chat(USER, result('{"balance": 5}'), REPLY),                                     # 4
    chat(USER, calling(call("CheckBalance", {"account_type": "savings"})), REPLY),   # 5
    chat(USER, calling(call("CheckBalance", "{account_type: checking")), REPLY),     # 6
    chat(USER, calling(call("CheckBalance", "[1, 2]")), REPLY),                      # 7
    chat(USER, calling(call("Broken", {"x": "1"})), result("ok"), REPLY,             # 8
         tools=[BROKEN_SCHEMA]),
    chat(USER, calling(call("CheckBalance", {"account_type": "checking"}, "a"),      # 9
                       call("CheckBalance", {"account_type": "savings"}, "b")),
         result("5", "b"), result("7", "a"), REPLY),
    chat(USER, REPLY, tools=None),                                                   # 10
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def check(tmp_path, lines: list[str], tokenizer, name="train.jsonl", **options) -> dict:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return check_files(path, options=CheckOptions(**options), tokenizer=tokenizer)


def where(found: list[dict]) -> list[tuple]:
    return [(f["line"], f["turn"]) for f in found]


@pytest.fixture(scope="module")
def report(tmp_path_factory, tokenizer):
    return check(tmp_path_factory.mktemp("tools"), CHAT_LINES, tokenizer)


def test_calls_naming_undefined_tools_and_breaking_schemas(report):
    tools = report["tools"]
    assert where(tools["undefined_tool"]) == [(2, 1)]
    assert "CloseAccount" in tools["undefined_tool"][0]["message"]
    assert "CheckBalance, TransferMoney" in tools["undefined_tool"][0]["message"]
    found = {(f["line"], f["turn"], f["part"], f["message"]) for f in tools["bad_arguments"]}
    assert found == {
        (3, 1, "tool_calls[0]", "CheckBalance: account_type: 'gold' is not one of "
                                "['checking', 'savings']"),
        (3, 1, "tool_calls[1]", "TransferMoney: 'recipient' is a required property"),
        (3, 1, "tool_calls[1]", "TransferMoney: amount: 'ten' is not of type 'number'")}


def test_results_answering_no_call_and_calls_never_answered(report):
    """A result after a call that is answered already, or with no call, is the finding;
    parallel calls answered in another order are fine."""
    assert where(report["tools"]["result_without_call"]) == [(4, 1)]
    assert where(report["tools"]["unanswered_call"]) == [(5, 1)]
    assert "CheckBalance" in report["tools"]["unanswered_call"][0]["message"]


def test_unreadable_arguments_are_malformed_rows_with_their_field(report):
    found = {(m["line"], m["field"], m["message"].split(":")[0]) for m in report["malformed"]}
    field = "messages[1].tool_calls[0].function.arguments"
    assert found == {(6, field, "arguments are not valid JSON"),
                     (7, field, "arguments must be a JSON object")}


def test_malformed_definitions_once_with_their_lines_and_calls_not_judged(report):
    [found] = report["tools"]["bad_definition"]
    assert found["lines"] == [8] and found["tool"] == "Broken"
    assert "'strin' is not valid" in found["message"]
    assert "required key 'y' has no property" in found["message"]
    assert all(f["line"] != 8 for f in report["tools"]["bad_arguments"])


def test_summary_counts_and_report_rows(report, capsys):
    summary = report["tools"]["summary"]
    assert (summary["dialogues_with_tools"], summary["dialogues_with_calls"],
            summary["calls"], summary["results"]) == (7, 6, 8, 8)
    assert summary["per_tool"] == {"CheckBalance": 5, "CloseAccount": 1, "TransferMoney": 1,
                                   "Broken": 1}
    counts = report["counts"]
    assert (counts["tools_undefined_tool"], counts["tools_bad_arguments"],
            counts["tools_result_without_call"], counts["tools_unanswered_call"],
            counts["tools_bad_definition"]) == (1, 3, 1, 1, 1)
    print_summary(report, Console(width=240))
    out = " ".join(capsys.readouterr().out.split())
    assert "tools: 7 dialogue(s) with tools, 8 call(s) in 6 dialogue(s)" in out
    assert "line 4 turn 1: a tool result that answers no call" in out
    assert "Tools: malformed definitions" in render_html(report)


def test_calls_and_results_are_not_empty_turns_or_role_order_problems(report):
    """A turn that only calls has no words; two results in a row answer two calls. Only
    line 5 (a call, then a reply with no result between) has two assistant turns in a row."""
    assert report["empty"] == []
    assert where(report["dialogues"]["role_order"]) == [(5, 2)]


def test_lengths_count_the_rendered_tool_list(tmp_path, tokenizer):
    with_tools = check(tmp_path, [CHAT_LINES[0]], tokenizer, "a.jsonl")
    without = check(tmp_path, [chat(*json.loads(CHAT_LINES[0])["messages"], tools=None)],
                    tokenizer, "b.jsonl")
    assert with_tools["lengths"]["tokens"]["max"] > without["lengths"]["tokens"]["max"] + 50


def test_plain_dialogues_have_no_tools_section(report, tmp_path, tokenizer):
    plain = check(tmp_path, [CHAT_LINES[-1]], tokenizer)
    assert plain["tools"] is None and not any(k.startswith("tools_") for k in plain["counts"])


def test_sharegpt_function_call_and_observation_turns(tmp_path, tokenizer):
    def turn(speaker, value):
        return {"from": speaker, "value": value if isinstance(value, str) else json.dumps(value)}

    def record(*turns):
        return json.dumps({"tools": json.dumps([BALANCE, TRANSFER]), "conversations": list(turns)})

    lines = [record(turn("human", "balance?"),
                    turn("function_call", {"name": "CheckBalance",
                                           "arguments": {"account_type": "checking"}}),
                    turn("observation", '{"balance": 5}'), turn("gpt", "You have 5.")),
             record(turn("human", "close it"), turn("function_call", {"name": "Nope",
                                                                       "arguments": {}}),
                    turn("observation", "done"), turn("gpt", "Closed.")),
             record(turn("human", "hi"), turn("observation", "stray"), turn("gpt", "Hello."))]
    tools = check(tmp_path, lines, tokenizer, "sharegpt.jsonl")["tools"]
    assert where(tools["undefined_tool"]) == [(2, 1)]
    assert where(tools["result_without_call"]) == [(3, 1)]
    assert tools["summary"]["calls"] == 2 and tools["summary"]["dialogues_with_tools"] == 3


def test_openai_legacy_functions_and_function_call(tmp_path, tokenizer):
    line = json.dumps({"functions": [BALANCE, TRANSFER], "messages": [
        {"role": "user", "content": "send 5 dollars"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "TransferMoney", "arguments": '{"amount": 5}'}},
        {"role": "function", "name": "TransferMoney", "content": "sent"},
        {"role": "assistant", "content": "Sent."}]})
    tools = check(tmp_path, [line], tokenizer, "legacy.jsonl")["tools"]
    assert [(f["line"], f["turn"], f["message"]) for f in tools["bad_arguments"]] == [
        (1, 1, "TransferMoney: 'recipient' is a required property")]
    assert tools["result_without_call"] == [] and tools["summary"]["per_tool"] == {
        "TransferMoney": 1}
