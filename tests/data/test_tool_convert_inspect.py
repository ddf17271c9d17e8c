"""Tool-calling dialogues through ``data convert`` (chat ⇄ ShareGPT ⇄ chat keeps tools,
calls, results and their links; OpenAI JSONL keeps what the API accepts) and through
``data inspect`` (calls trained, the tool list and results context only)."""

from __future__ import annotations

import json
import re

import pytest

from dialogtune.data.encode.inspect import inspect_dialogue
from dialogtune.data.transform.convert import convert_file
from dialogtune.errors import DataError
from helpers import build_tokenizer, write_jsonl

BALANCE = {"name": "CheckBalance", "description": "The balance of an account",
           "parameters": {"type": "object", "properties": {
               "account_type": {"type": "string", "enum": ["checking", "savings"]}},
               "required": ["account_type"]}}
TRANSFER = {"name": "TransferMoney", "description": "Send money", "parameters": {
    "type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}}
TOOLS = [{"type": "function", "function": f} for f in (BALANCE, TRANSFER)]


def call(call_id: str, name: str, arguments: dict) -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


DIALOGUE = {"id": "t1", "tools": TOOLS, "messages": [
    {"role": "user", "content": "What do I have in checking and savings?"},
    {"role": "assistant", "content": "", "tool_calls": [
        call("call_x", "CheckBalance", {"account_type": "checking"}),
        call("call_y", "CheckBalance", {"account_type": "savings"})]},
    {"role": "tool", "content": '{"balance": 7}', "tool_call_id": "call_y",
     "name": "CheckBalance"},
    {"role": "tool", "content": '{"balance": 5}', "tool_call_id": "call_x",
     "name": "CheckBalance"},
    {"role": "assistant", "content": "Checking 5, savings 7.", "weight": 1},
    {"role": "user", "content": "Send 2."},
    {"role": "assistant", "content": "", "tool_calls": [call("call_z", "TransferMoney",
                                                             {"amount": 2})]},
    {"role": "tool", "content": "sent", "tool_call_id": "call_z", "name": "TransferMoney"},
    {"role": "assistant", "content": "Done."}]}


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chat_to_sharegpt_to_chat_keeps_tools_calls_and_results(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [DIALOGUE])
    convert_file(source, "sharegpt", tmp_path / "sharegpt.jsonl")
    [sharegpt] = read_jsonl(tmp_path / "sharegpt.jsonl")
    assert json.loads(sharegpt["tools"]) == [BALANCE, TRANSFER]  # LLaMA-Factory's string
    turns = sharegpt["conversations"]
    assert [t["from"] for t in turns] == ["human", "function_call", "observation",
                                          "observation", "gpt", "human", "function_call",
                                          "observation", "gpt"]
    assert json.loads(turns[6]["value"]) == {"id": "call_z", "name": "TransferMoney",
                                             "arguments": {"amount": 2}}
    assert len(json.loads(turns[1]["value"])) == 2  # two calls: a list
    convert_file(tmp_path / "sharegpt.jsonl", "chat", tmp_path / "back.jsonl")
    assert read_jsonl(tmp_path / "back.jsonl") == [DIALOGUE]


def test_a_turn_that_speaks_and_calls_becomes_two_sharegpt_turns(tmp_path):
    messages = [{"role": "user", "content": "balance?"},
                {"role": "assistant", "content": "Let me look.",
                 "tool_calls": [call("c1", "CheckBalance", {"account_type": "checking"})]},
                {"role": "tool", "content": "5", "tool_call_id": "c1", "name": "CheckBalance"},
                {"role": "assistant", "content": "5 dollars."}]
    source = write_jsonl(tmp_path / "in.jsonl", [{"tools": TOOLS, "messages": messages}])
    _, notes = convert_file(source, "sharegpt", tmp_path / "out.jsonl")
    [record] = read_jsonl(tmp_path / "out.jsonl")
    assert [t["from"] for t in record["conversations"]][:3] == ["human", "gpt", "function_call"]
    assert any("became a gpt and a function_call turn" in n and "lines 1" in n for n in notes)


def test_openai_jsonl_keeps_tools_calls_and_result_links(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [DIALOGUE])
    _, notes = convert_file(source, "openai", tmp_path / "openai.jsonl")
    [record] = read_jsonl(tmp_path / "openai.jsonl")
    assert record["tools"] == TOOLS
    calling, result = record["messages"][1], record["messages"][2]
    assert calling == {"role": "assistant", "content": None,
                       "tool_calls": DIALOGUE["messages"][1]["tool_calls"]}
    assert result == {"role": "tool", "content": '{"balance": 7}', "tool_call_id": "call_y"}
    assert notes == ["dropped dialogue field(s) id: 1 record(s) (lines 1)"]
    convert_file(tmp_path / "openai.jsonl", "chat", tmp_path / "back.jsonl")
    [back] = read_jsonl(tmp_path / "back.jsonl")
    assert [m.get("tool_call_id") for m in back["messages"]] == [
        m.get("tool_call_id") for m in DIALOGUE["messages"]]


def test_convert_refuses_a_result_answering_no_call(tmp_path):
    stray = {"messages": [{"role": "user", "content": "hi"},
                          {"role": "tool", "content": "stray"},
                          {"role": "assistant", "content": "hello"}]}
    source = write_jsonl(tmp_path / "in.jsonl", [DIALOGUE, stray])
    with pytest.raises(DataError, match=r"in.jsonl:2: a tool result that answers no call "
                                        r"before it \(turn 1"):
        convert_file(source, "sharegpt", tmp_path / "out.jsonl")


def test_inspect_marks_calls_trained_and_tool_list_and_results_context(tmp_path):
    path = write_jsonl(tmp_path / "tools.jsonl", [DIALOGUE])
    inspection = inspect_dialogue(build_tokenizer(), str(path))
    plain = inspection.plain()
    trained = "".join(re.findall(r"\[\[(.*?)\]\]", plain, re.DOTALL))
    context = re.sub(r"\[\[.*?\]\]", "", plain, flags=re.DOTALL)
    first_call = '<tool_call>{"name": "CheckBalance", "arguments": {"account_type": "checking"}}'
    assert first_call in trained and "Checking 5, savings 7." in trained
    assert '"name":"TransferMoney","description":"Send money"' in context  # the tool list
    assert '{"balance":7}' in context and "sent" in context  # results, compact
    assert "What do I have" in context
    for untrained in ('"balance"', "TransferMoney\",\"description", "What do I have"):
        assert untrained not in trained
    assert inspection.counts().endswith("; 3 tool call(s) trained, 3 tool result(s) and 2 tool "
                                        "definition(s) context only")
