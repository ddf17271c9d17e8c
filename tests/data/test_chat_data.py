"""Chat data: readers, loss masks on two template styles, truncation, documents, packing."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import DIALOGUES, build_model_folder, build_tokenizer, write_jsonl
from dialogtune.data.encode.chat import (IGNORE, encode_dialogue, encode_dialogues, end_of_turn_ids,
                                  render_prompt_ids)
from dialogtune.data.encode.chat_batches import lm_batches, pack_sequences
from dialogtune.data.formats import read_dialogues
from dialogtune.data.encode.documents import document_blocks
from dialogtune.data.formats import read_documents
from dialogtune.data.encode.inspect import inspect_dialogue
from dialogtune.errors import DataError
from dialogtune.models.lm import lm_loss, selected_logits, targets_and_mask, token_nll

END = {"chatml": "<|im_end|>", "zephyr": "</s>"}
MARKER = {"chatml": "<|im_start|>assistant\n", "zephyr": "<|assistant|>\n"}


@pytest.fixture(scope="module")
def dialogues(tmp_path_factory):
    return read_dialogues(write_jsonl(tmp_path_factory.mktemp("d") / "d.jsonl", DIALOGUES))


def trained_runs(tokenizer, encoded) -> list[str]:
    """The decoded text of each maximal run of trained tokens."""
    runs, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.mark.parametrize("template", ["chatml", "zephyr"])
def test_every_weighted_assistant_turn_and_nothing_else_is_trained(template, dialogues):
    tokenizer = build_tokenizer(template)
    for dialogue in dialogues:
        encoded, dropped = encode_dialogue(tokenizer, dialogue)
        expected = [m.content + END[template] for m in dialogue.messages
                    if m.role == "assistant" and m.weight != 0]
        assert trained_runs(tokenizer, encoded) == expected and dropped == 0
        # the generation marker right before each reply is context, never a target
        text = tokenizer.decode(encoded.input_ids)
        assert text.count(MARKER[template]) == sum(
            m.role == "assistant" for m in dialogue.messages)
        first = next(i for i, label in enumerate(encoded.labels) if label != IGNORE)
        assert tokenizer.decode(encoded.input_ids[:first]).endswith(MARKER[template])


@pytest.mark.parametrize("template", ["chatml", "zephyr"])
def test_inference_prompt_is_the_training_prefix(template, dialogues):
    """Generation starts exactly where a trained reply starts in training."""
    tokenizer = build_tokenizer(template)
    dialogue = dialogues[0]
    encoded, _ = encode_dialogue(tokenizer, dialogue)
    first = next(i for i, label in enumerate(encoded.labels) if label != IGNORE)
    context = [{"role": m.role, "content": m.content} for m in dialogue.messages[:2]]
    assert render_prompt_ids(tokenizer, context) == encoded.input_ids[:first]
    assert end_of_turn_ids(tokenizer) == [tokenizer.convert_tokens_to_ids(END[template])]


def test_weight_zero_turn_is_context_only(dialogues):
    tokenizer = build_tokenizer("chatml")
    encoded, _ = encode_dialogue(tokenizer, dialogues[1])
    assert "I blocked the card." in tokenizer.decode(encoded.input_ids)
    assert trained_runs(tokenizer, encoded) == ["Goodbye and have a nice day.<|im_end|>"]


def test_template_that_trims_content_is_still_masked_exactly(tmp_path):
    tokenizer = build_tokenizer("chatml")
    tokenizer.chat_template = tokenizer.chat_template.replace(
        "message['content']", "(message['content'] | trim)")
    records = [{"messages": [{"role": "user", "content": " hi "},
                             {"role": "assistant", "content": "  Your balance is 120.  "}]}]
    encoded, _ = encode_dialogue(tokenizer, read_dialogues(write_jsonl(tmp_path / "t.jsonl",
                                                                       records))[0])
    assert trained_runs(tokenizer, encoded) == ["Your balance is 120.<|im_end|>"]


def test_truncation_drops_whole_turns_and_says_how_many(dialogues, caplog):
    tokenizer = build_tokenizer("chatml")
    full, _ = encode_dialogues(tokenizer, dialogues)
    limit = len(full[0].input_ids) - 3  # the second reply of dialogue 1 no longer fits
    encoded, stats = encode_dialogues(tokenizer, dialogues, limit)
    assert stats.dropped_turns >= 1 and "dropped" in caplog.text
    assert all(len(e.input_ids) <= limit for e in encoded)
    assert trained_runs(tokenizer, encoded[0]) == ["Your balance is 120 dollars.<|im_end|>"]
    _, tiny = encode_dialogues(tokenizer, dialogues, 5)
    assert tiny.kept == 0 and tiny.dropped_dialogues == len(dialogues)


def test_dialogue_without_trained_turn_is_skipped(tmp_path):
    records = [{"messages": [{"role": "user", "content": "hi"},
                             {"role": "assistant", "content": "hello", "weight": 0}]}]
    encoded, stats = encode_dialogues(build_tokenizer(),
                                      read_dialogues(write_jsonl(tmp_path / "a.jsonl", records)))
    assert encoded == [] and stats.untrained_dialogues == 1


def test_sharegpt_and_alpaca_read_and_keep_extra_fields(tmp_path):
    share = write_jsonl(tmp_path / "s.jsonl", [{"id": 7, "system": "Be brief.", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello", "mood": "ok"}]}])
    alpaca = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Sum", "input": "1 2",
                                                 "output": "3", "source": "x"}])
    dialogue = read_dialogues(share)[0]
    assert [m.role for m in dialogue.messages] == ["system", "user", "assistant"]
    assert dialogue.extra == {"id": 7} and dialogue.messages[2].extra == {"mood": "ok"}
    dialogue = read_dialogues(alpaca, "alpaca")[0]
    assert dialogue.messages[0].content == "Sum\n\n1 2" and dialogue.extra == {"source": "x"}
    encoded, _ = encode_dialogue(build_tokenizer(), dialogue)
    assert encoded.trained == len(build_tokenizer()("3<|im_end|>")["input_ids"])


@pytest.mark.parametrize("record,fmt,field", [
    ({"messages": [{"role": "robot", "content": "x"}]}, "auto", "messages[0].role"),
    ({"messages": [{"role": "user", "content": 3}]}, "auto", "messages[0].content"),
    ({"messages": [{"role": "assistant", "content": "x", "weight": 2}]}, "auto",
     "messages[0].weight"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "conversations[0].from"),
    ({"instruction": "x", "output": None}, "alpaca", "output"),
])
def test_bad_records_name_file_line_and_field(tmp_path, record, fmt, field):
    good = {"messages": [{"role": "user", "content": "ok"}]}
    if fmt == "sharegpt":
        good = {"conversations": [{"from": "human", "value": "ok"}]}
    elif fmt == "alpaca":
        good = {"instruction": "ok", "output": "ok"}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_dialogues(path, fmt)
    assert f"bad.jsonl:2 (field '{field}')" in str(error.value)
    assert "\n" not in str(error.value)


def test_documents_become_fixed_blocks_with_located_errors(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Your balance is 120 dollars. " * 20, encoding="utf-8")
    (docs / "sub" / "b.md").write_text("# Cards\nI lost my card. " * 10, encoding="utf-8")
    (docs / "skip.csv").write_text("not,a,document", encoding="utf-8")
    tokenizer = build_tokenizer()
    documents = read_documents(docs)
    assert [d.source.rsplit("/", 1)[-1] for d in documents] == ["a.txt", "b.md"]
    blocks = document_blocks(tokenizer, documents, 32)
    assert all(len(b.input_ids) == 32 for b in blocks[:-1]) and blocks[0].labels[1:] == blocks[0].input_ids[1:]
    assert tokenizer.eos_token_id in sum((b.input_ids for b in blocks), [])
    (docs / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt:1: document is empty"):
        read_documents(docs)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff byte\n")
    with pytest.raises(DataError, match="bad.txt:2: not valid UTF-8"):
        read_documents(bad)
    with pytest.raises(DataError, match="expected a document file"):
        read_documents(docs / "skip.csv")


def test_inspect_marks_trained_tokens_and_counts(tmp_path, capsys):
    from dialogtune.data.encode.inspect import print_inspection

    path = write_jsonl(tmp_path / "d.jsonl", DIALOGUES)
    inspection = inspect_dialogue(build_tokenizer(), str(path), index=2)
    print_inspection(inspection, color=False)
    out = capsys.readouterr().out
    assert "[[Your phone bill of 30 dollars is paid.<|im_end|>]]" in out
    assert f"tokens: {inspection.tokens} total, {inspection.trained} trained" in out
    with pytest.raises(DataError, match="out of range"):
        inspect_dialogue(build_tokenizer(), str(path), index=9)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    folder = build_model_folder(tmp_path_factory.mktemp("m"))
    return AutoModelForCausalLM.from_pretrained(folder).eval()


@torch.no_grad()
def test_packed_dialogues_do_not_attend_across_boundaries(tiny_model, dialogues):
    """Each packed dialogue's logits equal its logits alone; without the position reset
    (one long sequence) they would not — so the check is sensitive. transformers only
    detects packing without a KV cache, hence use_cache=False (as models/lm.py passes)."""
    encoded, _ = encode_dialogues(build_tokenizer(), dialogues)
    packed = pack_sequences(encoded[:3])
    logits = tiny_model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                        use_cache=False).logits
    start = 0
    for item in encoded[:3]:
        alone = tiny_model(input_ids=torch.tensor([item.input_ids])).logits[0]
        torch.testing.assert_close(logits[0, start:start + len(item.input_ids)], alone,
                                   atol=1e-5, rtol=1e-5)
        start += len(item.input_ids)
    merged = tiny_model(input_ids=packed["input_ids"], use_cache=False).logits
    width = len(encoded[0].input_ids)
    assert not torch.allclose(merged[0, width:], logits[0, width:], atol=1e-3)


@torch.no_grad()
def test_loss_on_selected_positions_equals_full_vocabulary_loss(tiny_model, dialogues):
    encoded, _ = encode_dialogues(build_tokenizer(), dialogues)
    for batch in (pack_sequences(encoded), lm_batches(encoded, 4, 0, 0, pack=False).collate(
            [0, 1, 2, 3])):
        reference = tiny_model(**batch, use_cache=False).loss  # transformers: shifted CE
        torch.testing.assert_close(lm_loss(tiny_model, batch), reference, atol=1e-5, rtol=1e-5)
        keep, targets = targets_and_mask(batch["labels"])
        assert selected_logits(tiny_model, batch, keep).shape == (len(targets),
                                                                  tiny_model.config.vocab_size)
    total, count = token_nll(tiny_model, pack_sequences(encoded))
    assert count == sum(e.trained for e in encoded)


@torch.no_grad()
def test_selected_positions_follow_peft_virtual_tokens(dialogues):
    """Prompt tuning prepends virtual tokens: the mask must shift with them."""
    import tempfile
    from pathlib import Path

    from dialogtune.config import StrategyConfig
    from dialogtune.models.loading import load_causal_lm
    from dialogtune.strategies import CAUSAL_LM, apply_strategy

    folder = build_model_folder(Path(tempfile.mkdtemp()))
    model, tokenizer, _ = load_causal_lm(folder)
    model = apply_strategy(model, StrategyConfig(name="prompt-tuning", num_virtual_tokens=4),
                           CAUSAL_LM).eval()
    encoded, _ = encode_dialogues(tokenizer, dialogues)
    batch = lm_batches(encoded, 2, 0, 0, pack=False).collate([0, 2])
    torch.testing.assert_close(lm_loss(model, batch), model(**batch).loss, atol=1e-5, rtol=1e-5)
