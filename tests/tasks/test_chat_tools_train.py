"""Chat SFT on tool-calling dialogues: what the loss covers, and training with the
strategies of each family (adapter, full, prompt learning) on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import write_jsonl
from dialogtune.config import load_config
from dialogtune.data.encode.chat import IGNORE, encode_dialogue
from dialogtune.data.formats import read_dialogues
from dialogtune.data.tool_calls import ParsedReply
from dialogtune.evaluate.chat import perplexity_metrics
from dialogtune.inference.chat import ChatPredictor
from dialogtune.models.loading import load_causal_lm
from dialogtune.pipeline import train_run

pytestmark = pytest.mark.usefixtures("one_thread")

TOOLS = [{"type": "function", "function": {
    "name": "get_balance", "description": "Balance of an account",
    "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}},
                   "required": ["account_id"]}}}]
RESULT = {"account_id": "LM-1234", "balance": "$12.50", "due_date": "May 3"}


def tool_dialogue(number: int, account: str = "LM-1234", balance: str = "$12.50") -> dict:
    arguments = json.dumps({"account_id": account})
    result = json.dumps({**RESULT, "account_id": account, "balance": balance})
    return {"id": f"t{number}", "tools": TOOLS, "messages": [
        {"role": "system", "content": "You are the bank assistant."},
        {"role": "user", "content": f"What is the balance of {account}?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_balance", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_balance", "content": result},
        {"role": "assistant", "content": f"Your balance is {balance}, due May 3."}]}


@pytest.fixture(scope="module")
def tool_data(tmp_path_factory) -> Path:
    records = [tool_dialogue(i, f"LM-{1000 + i}", f"${10 + i}.50") for i in range(4)]
    return write_jsonl(tmp_path_factory.mktemp("tools") / "tools.jsonl", records)


def trained_and_untrained(tokenizer, record: dict, folder: Path) -> tuple[str, str, str]:
    """(whole text, text of the labelled tokens, text of the unlabelled tokens)."""
    encoded, _ = encode_dialogue(tokenizer, read_dialogues(
        write_jsonl(folder / "one.jsonl", [record]))[0])
    pick = lambda keep: tokenizer.decode([i for i, label in zip(
        encoded.input_ids, encoded.labels) if (label != IGNORE) == keep])
    return tokenizer.decode(encoded.input_ids), pick(True), pick(False)


def test_loss_covers_the_call_and_reply_never_the_result_or_user(folder, tmp_path):
    _, tokenizer, _ = load_causal_lm(folder)
    whole, trained, untrained = trained_and_untrained(tokenizer, tool_dialogue(1), tmp_path)
    call = ('<tool_call>{"name": "get_balance", "arguments": {"account_id": "LM-1234"}}'
            "</tool_call>")
    result = '{"account_id":"LM-1234","balance":"$12.50","due_date":"May 3"}'
    # exactly the call and the reply, each with its end-of-turn token
    assert trained == f"{call}<|im_end|>Your balance is $12.50, due May 3.<|im_end|>"
    assert result in whole and result in untrained
    assert "What is the balance of LM-1234?" in untrained and "bank assistant" in untrained


@pytest.mark.parametrize("strategy", ["lora", "full", "prompt-tuning"])
def test_tool_dialogues_train_and_answer(strategy, folder, tool_data, tmp_path):
    run = tmp_path / "run"
    prompt = ["strategy.num_virtual_tokens=4"] if strategy == "prompt-tuning" else []
    cfg = load_config(None, ["train.num_threads=1", "train.max_steps=3", "train.lr=1e-2",
                             "train.save_every_steps=0", f"strategy.name={strategy}", *prompt],
                      task="chat", output=str(run),
                      **{"data.train": str(tool_data), "model.name": folder})
    summary = train_run(cfg)
    assert summary["steps"] == 3 and summary["tokens_trained"] > 0
    assert summary["strategy"] == strategy
    predictor = ChatPredictor.from_run(run)
    dialogues = read_dialogues(tool_data)
    base = ChatPredictor.from_model(folder)
    before = perplexity_metrics(base.model, base.tokenizer, dialogues, 512)["perplexity"]
    after = perplexity_metrics(predictor.model, predictor.tokenizer, dialogues, 512)
    assert after["perplexity"] < before  # it learnt the calls and replies it trained on
    question = tool_dialogue(9)["messages"][:2]
    reply = predictor.respond(question, TOOLS, max_new_tokens=6)
    assert isinstance(reply, ParsedReply)
    prompt = predictor.tokenizer.decode(predictor.prompt_ids(question, 6, TOOLS)[0])
    assert '"name":"get_balance"' in prompt  # the tool list reaches the trained model
