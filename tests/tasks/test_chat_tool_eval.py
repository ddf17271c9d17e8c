"""``dialogtune eval`` on tool-calling dialogues: which turns are scored, an oracle that
repeats the reference scores perfectly, and tiny runs trained with and without tools get
the ``tool_calls`` / ``grounding`` blocks through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import write_jsonl
from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.data.formats import read_dialogues
from dialogtune.data.tool_calls import parse_reply
from dialogtune.evaluate.chat import evaluate_predictor
from dialogtune.evaluate.chat_tools import strip_tools, tool_turns
from dialogtune.inference.chat import ChatPredictor
from dialogtune.pipeline import train_run

pytestmark = pytest.mark.usefixtures("one_thread")

TOOLS = [{"type": "function", "function": {
    "name": "balance", "description": "An account's balance",
    "parameters": {"type": "object", "properties": {
        "account": {"type": "string", "enum": ["checking", "savings"]}},
        "required": ["account"]}}}]


def call(number: int, account: str) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": [{
        "id": f"call_{number}", "type": "function", "function": {
            "name": "balance", "arguments": json.dumps({"account": account})}}]}


def result(number: int, account: str, amount: str) -> dict:
    return {"role": "tool", "tool_call_id": f"call_{number}", "name": "balance",
            "content": json.dumps([{"account": account, "balance": amount}])}


TOOL_DIALOGUES = [
    {"id": "t1", "tools": TOOLS, "messages": [
        {"role": "user", "content": "What is my checking balance?"},
        call(1, "checking"), result(1, "checking", "120.50"),
        {"role": "assistant", "content": "Your checking has $120.50."},
        {"role": "user", "content": "Thanks."},
        {"role": "assistant", "content": "Goodbye."}]},
    {"id": "t2", "tools": TOOLS, "messages": [
        {"role": "user", "content": "Savings balance please."},
        call(1, "savings"), result(1, "savings", "1630"),
        {"role": "assistant", "content": "Your savings has $1,630."}]},
]


@pytest.fixture(scope="module")
def tool_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("tools") / "tools.jsonl", TOOL_DIALOGUES)


def train(folder: str, data: Path, output: Path) -> Path:
    train_run(load_config(None, ["train.max_steps=3", "train.lr=3e-2", "train.num_threads=1"],
                          task="chat", output=str(output),
                          **{"data.train": str(data), "model.name": folder}))
    return output


@pytest.fixture(scope="module")
def runs(tmp_path_factory, folder, tool_data) -> dict[str, Path]:
    """A tiny run trained on the tool dialogues and one on the same dialogues without tools."""
    root = tmp_path_factory.mktemp("tool_runs")
    plain = [{"id": d["id"], "messages": strip_tools(d["messages"])} for d in TOOL_DIALOGUES]
    return {"tools": train(folder, tool_data, root / "tools"),
            "plain": train(folder, write_jsonl(root / "plain.jsonl", plain), root / "plain")}


def test_turns_stop_before_the_call_past_the_limit_and_strip_tools_without_them(tool_data):
    dialogues = read_dialogues(tool_data)
    turns = tool_turns(dialogues, limit=1)
    assert [(t.dialogue_id, bool(t.calls)) for t in turns] == [
        ("t1", True), ("t1", False), ("t1", False)]  # t2's call would be the second
    assert turns[1].context[-1]["role"] == "tool" and "120.50" in turns[1].results
    plain = tool_turns(dialogues, limit=1, with_tools=False)
    assert [t.text for t in plain] == [t.text for t in turns[1:]]
    assert plain[0].tools is None and [m["role"] for m in plain[0].context] == ["user"]
    assert plain[0].results == turns[1].results  # judged against the same tool results


class Oracle(ChatPredictor):
    """A predictor that writes the reference turn: what scores perfectly on the calls."""

    references: dict[str, str] = {}

    def respond(self, messages, tools=None, max_new_tokens=128, temperature=0.0, top_p=1.0,
                seed=None):
        return parse_reply(self.references[json.dumps(messages)])


def test_an_oracle_scores_perfect_calls_and_the_references_grounding(folder, tool_data):
    dialogues = read_dialogues(tool_data)
    Oracle.references = {json.dumps(t.context): t.reference for t in tool_turns(dialogues, 9)}
    metrics, _, replies = evaluate_predictor(Oracle.from_model(folder), dialogues, None)
    calls, grounding = metrics["tool_calls"], metrics["grounding"]
    for key in ("call_precision", "call_recall", "name_accuracy", "arguments_exact_match",
                "argument_f1", "json_valid_rate", "schema_valid_rate"):
        assert calls[key] == 1.0, key
    assert calls["scored_turns"] == 5 and calls["reference_calls"] == 2
    assert grounding["hallucinated_value_rate"] == 0.0 and grounding["replies"] == 3
    assert grounding["result_value_recall"] == 1.0
    assert grounding["result_values_in_references"] == 2
    assert metrics["uses_tools"] and metrics["word_turns"] == 3
    assert metrics["max_new_tokens"] >= 48 and '"balance"' in replies[0]


def test_runs_record_whether_they_trained_with_tools(runs):
    summary = {name: json.loads((run / "run.json").read_text()) for name, run in runs.items()}
    assert summary["tools"]["data"]["uses_tools"] is True
    assert summary["plain"]["data"]["uses_tools"] is False


RATES = {"tool_calls": ("call_precision", "call_recall", "name_accuracy",
                        "arguments_exact_match", "argument_f1", "json_valid_rate"),
         "grounding": ("hallucinated_value_rate", "result_value_recall")}
# defined whatever the model writes: the reference has calls, replies and result values
DEFINED = {"call_recall", "name_accuracy", "arguments_exact_match", "argument_f1",
           "hallucinated_value_rate", "result_value_recall"}


def check_rates(blocks: dict, names: tuple[str, ...]) -> None:
    for block in names:
        for key in RATES[block]:
            value = blocks[block][key]
            assert (value is None and key not in DEFINED) or 0.0 <= value <= 1.0, (key, value)


def test_cli_eval_adds_tool_blocks_and_scores_a_plain_run_without_tools(runs, tool_data,
                                                                        tmp_path):
    out = {name: tmp_path / f"{name}.json" for name in ("tools", "plain", "base")}
    assert main(["eval", str(runs["tools"]), "--data", str(tool_data), "--output",
                 str(out["tools"])]) == 0
    assert main(["eval", str(runs["plain"]), "--data", str(tool_data), "--output",
                 str(out["plain"])]) == 0
    assert main(["eval", str(runs["tools"]), "--data", str(tool_data), "--base", "--output",
                 str(out["base"])]) == 0
    tools, plain, base = (json.loads(out[name].read_text()) for name in ("tools", "plain",
                                                                         "base"))
    check_rates(tools, ("tool_calls", "grounding"))
    check_rates(base, ("tool_calls", "grounding"))
    check_rates(plain, ("grounding",))
    assert "tool_calls" not in plain and plain["uses_tools"] is False
    assert plain["grounding"]["replies"] == tools["grounding"]["replies"] == 3
    assert tools["tool_calls"]["scored_turns"] == 5
    side = Path(tools["side_by_side"]).read_text()
    assert "<tool_call>" in side and "| base reply | tuned reply |" in side
