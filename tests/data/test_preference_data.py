"""Reading preference data (paired, TRL's forms, unpaired KTO rows) with errors by line and
field, and encoding it: chat SFT's text and tool format, loss on the final reply only."""

from __future__ import annotations

import json

import pytest

from helpers import write_jsonl
from dialogtune.data.encode.chat import IGNORE, encode_dialogue
from dialogtune.data.encode.preference import collate_preferences, encode_preferences
from dialogtune.data.formats.preference import read_preferences
from dialogtune.errors import DataError
from dialogtune.models.loading import load_causal_lm

CONTEXT = [{"role": "user", "content": "What is my balance?"}]
GOOD = {"role": "assistant", "content": "Your balance is 120 dollars."}
BAD = {"role": "assistant", "content": "Your balance is 70 dollars."}
TOOLS = [{"type": "function", "function": {
    "name": "get_balance", "description": "Balance of an account",
    "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}},
                   "required": ["account_id"]}}}]
TOOL_CONTEXT = [
    {"role": "system", "content": "You are the bank assistant."},
    {"role": "user", "content": "What is the balance of LM-1234?"},
    {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "get_balance", "arguments": json.dumps({"account_id": "LM-1234"})}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_balance",
     "content": json.dumps({"balance": "$12.50", "due_date": "May 3"})},
    {"role": "user", "content": "And when is it due?"},
    {"role": "assistant", "content": "It is due May 3."},
    {"role": "user", "content": "Thanks. Say the balance again?"}]


def read(tmp_path, rows):
    return read_preferences(write_jsonl(tmp_path / "prefs.jsonl", rows)).preferences


def test_every_form_reads_to_the_same_pair(tmp_path):
    forms = [{"messages": CONTEXT, "chosen": GOOD, "rejected": BAD},
             {"prompt": CONTEXT[0]["content"], "chosen": GOOD["content"],
              "rejected": BAD["content"]},
             {"prompt": CONTEXT, "chosen": [GOOD], "rejected": [BAD]},
             {"chosen": [*CONTEXT, GOOD], "rejected": [*CONTEXT, BAD]}]
    for record in read(tmp_path, forms):
        assert record.paired
        assert [(m.role, m.content) for m in record.chosen.messages] == [
            ("user", CONTEXT[0]["content"]), ("assistant", GOOD["content"])]
        assert record.rejected.messages[-1].content == BAD["content"]


def test_unpaired_rows_are_desirable_or_undesirable(tmp_path):
    up, down = read(tmp_path, [{"messages": CONTEXT, "completion": GOOD, "label": True},
                               {"prompt": "Hi", "completion": "Bye.", "label": False}])
    assert up.chosen is not None and up.rejected is None and not up.paired
    assert down.chosen is None and down.rejected.messages[-1].content == "Bye."


@pytest.mark.parametrize("row, line_field", [
    ({"messages": CONTEXT, "chosen": GOOD}, "rejected"),
    ({"messages": CONTEXT, "chosen": {"role": "assistant", "content": 5}, "rejected": BAD},
     "chosen.content"),
    ({"messages": CONTEXT, "chosen": GOOD, "rejected": {"role": "user", "content": "x"}},
     "rejected"),
    ({"messages": CONTEXT, "completion": GOOD}, "label"),
    ({"messages": [], "chosen": GOOD, "rejected": BAD}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}], "chosen": GOOD, "rejected": BAD},
     "messages[0].role"),
    ({"chosen": [*CONTEXT, GOOD], "rejected": [{"role": "user", "content": "other"}, BAD]},
     "rejected"),
])
def test_a_bad_row_names_its_line_and_field(tmp_path, row, line_field):
    path = write_jsonl(tmp_path / "prefs.jsonl", [{"messages": CONTEXT, "chosen": GOOD,
                                                   "rejected": BAD}, row])
    with pytest.raises(DataError) as caught:
        read_preferences(path)
    assert (caught.value.line, caught.value.field) == (2, line_field)
    lenient = read_preferences(path, strict=False)
    assert len(lenient.preferences) == 1 and lenient.problems[0].field == line_field


def test_tool_context_encodes_as_chat_sft_with_loss_on_the_final_reply(folder, tmp_path):
    _, tokenizer, _ = load_causal_lm(folder)
    record = read(tmp_path, [{"tools": TOOLS, "messages": TOOL_CONTEXT, "chosen": {
        "role": "assistant", "content": "Your balance is $12.50."}, "rejected": BAD}])[0]
    (item,), stats = encode_preferences(tokenizer, [record])
    sft, _ = encode_dialogue(tokenizer, record.chosen)  # chat SFT: every reply trained
    assert item.chosen.input_ids == sft.input_ids
    trained = [i for i, label in enumerate(item.chosen.labels) if label != IGNORE]
    assert trained and tokenizer.decode([item.chosen.input_ids[i] for i in trained]).startswith(
        "Your balance is $12.50.")
    # the same tokens SFT trains at the end; its earlier replies (call, words) not here
    assert all(sft.labels[i] == item.chosen.labels[i] for i in trained)
    assert sum(label != IGNORE for label in sft.labels) > len(trained)
    assert stats["pairs"] == 1 and stats["scored_tokens"] == item.chosen.trained + \
        item.rejected.trained


def test_a_pair_is_one_row_its_context_once(folder, tmp_path):
    _, tokenizer, _ = load_causal_lm(folder)
    records = read(tmp_path, [{"messages": CONTEXT, "chosen": GOOD, "rejected": BAD},
                              {"messages": CONTEXT, "completion": GOOD, "label": False}])
    items, _ = encode_preferences(tokenizer, records)
    batch = collate_preferences(items, tokenizer.pad_token_id)
    pair, lone = items[0], items[1].rejected
    context = next(i for i, label in enumerate(pair.chosen.labels) if label != IGNORE)
    width = len(pair.chosen.input_ids) + len(pair.rejected.input_ids) - context
    assert batch["input_ids"].shape == (2, width)
    assert batch["input_ids"][1, :len(lone.input_ids)].tolist() == lone.input_ids
    mask = batch["attention_mask"][0, 0]
    chosen_end = len(pair.chosen.input_ids)
    assert not mask[chosen_end:, context:chosen_end].any()  # rejected never sees chosen
    assert mask[chosen_end:, :context].all()  # ... but sees the whole context
    assert batch["position_ids"][0, chosen_end] == context  # restarts after the context
    assert batch["chosen_mask"].tolist() == [True, False, False]
    assert batch["pair_ids"].tolist() == [0, 0, 1]
    # the first reply token of both sides is read at the context's last position
    first = [int(batch["target_positions"][batch["target_sequences"] == n][0]) for n in (0, 1)]
    assert first == [context - 1, context - 1]
    plain = collate_preferences(items, tokenizer.pad_token_id, share=False)
    assert plain["input_ids"].shape[0] == 3 and plain["attention_mask"].dim() == 2
