"""Chinese end to end (issue 15, items 1-2): the share of text a model cannot represent is
reported and, for training, refused unless forced; a local model folder whose vocabulary
holds CJK characters and a byte-level causal LM (the SmolLM2 path) both train intent + slot
models on Chinese, with slot spans that come back as exact character offsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dialogtune.cli import main
from dialogtune.data.encode.slots import SlotLabelMap, decode_spans, encode_texts, spans_to_labels
from dialogtune.data.formats.nlu import read_nlu
from dialogtune.data.quality.check import check_files
from dialogtune.data.quality.vocabulary import unknown_token_report
from dialogtune.inference.intent import load_classifier
from dialogtune.models.loading import load_tokenizer
from helpers import FAST, build_model_folder, write_jsonl
from helpers.chinese import chinese_nlu_records, tiny_cjk_bert

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = [r["text"] for r in chinese_nlu_records()]


@pytest.fixture(scope="module")
def cjk_bert(tmp_path_factory) -> str:
    return tiny_cjk_bert(tmp_path_factory.mktemp("cjk_bert"))


@pytest.fixture(scope="module")
def byte_level_lm(tmp_path_factory) -> str:
    return build_model_folder(tmp_path_factory.mktemp("byte_llama"))


@pytest.fixture(scope="module")
def chinese_nlu(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("zh") / "nlu.jsonl", chinese_nlu_records())


def test_unknown_share_by_vocabulary(tiny_bert, cjk_bert, byte_level_lm):
    lines = list(range(1, len(TEXTS) + 1))
    english = unknown_token_report(load_tokenizer(tiny_bert), TEXTS, lines)
    assert english["share"] > 0.9 and english["warn"] and "smollm2" in english["advice"]
    assert english["texts_affected"] == 1.0 and english["examples"][0]["share"] == 1.0
    for folder in (cjk_bert, byte_level_lm):
        report = unknown_token_report(load_tokenizer(folder), TEXTS, lines)
        assert report["share"] == 0.0 and not report["warn"] and report["examples"] == []
    # a WordPiece [UNK] stands for its whole word: every character of it is counted lost
    mixed = unknown_token_report(load_tokenizer(tiny_bert), ["my card zzzz"], [1])
    assert mixed["unknown_characters"] == 4 and mixed["characters"] == 10


def test_data_check_reports_what_the_model_cannot_represent(chinese_nlu, tiny_bert, cjk_bert):
    report = check_files(chinese_nlu, tokenizer=load_tokenizer(tiny_bert))
    assert report["lengths"]["unknown"]["share"] > 0.9
    assert report["counts"]["unknown_tokens"] == 5  # the worst texts, as examples
    assert report["counts"]["slot_span_problems"] == 0  # "给王伟转" has a span per character
    clean = check_files(chinese_nlu, tokenizer=load_tokenizer(cjk_bert))
    assert clean["lengths"]["unknown"]["share"] == 0.0 and clean["counts"]["unknown_tokens"] == 0


def test_spans_round_trip_on_chinese_for_both_vocabularies(chinese_nlu, cjk_bert, byte_level_lm):
    examples = read_nlu(chinese_nlu).examples
    labels = SlotLabelMap.from_examples(examples)
    for folder in (cjk_bert, byte_level_lm):
        _, alignments = encode_texts(load_tokenizer(folder), [e.text for e in examples], 64)
        for example, alignment in zip(examples, alignments):
            gold = spans_to_labels(example.slots, alignment, labels)
            probs = np.eye(len(labels))[[max(g, 0) for g in gold]]
            got = [(p.slot, p.start, p.end, p.value)
                   for p in decode_spans(example.text, probs, alignment, labels)]
            assert got == [(s.slot, s.start, s.end, example.text[s.start:s.end])
                           for s in example.slots], (folder, example.text)


def train_args(task: str, data, model: str, output, *extra: str) -> list[str]:
    args = ["train", "--task", task, "--data", str(data), "--output", str(output),
            "--model", model, "--epochs", "1", *extra]
    for setting in FAST:
        args += ["--set", setting]
    return args


def test_training_refuses_text_the_model_cannot_represent_unless_forced(
        chinese_nlu, tiny_bert, tmp_path, capsys):
    keep = ("--set", "model.extend_vocabulary=false")
    assert main(train_args("intent", chinese_nlu, tiny_bert, tmp_path / "run", *keep)) != 0
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "cannot represent" in error[0] and "--force" in error[0]
    assert "smollm2" in error[0] and "nlu.jsonl" in error[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert main(train_args("intent", chinese_nlu, tiny_bert, tmp_path / "run", *keep,
                           "--force")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unknown_characters"] > 0.9 and summary["added_tokens"] == 0


def test_missing_chinese_characters_become_tokens_of_their_own(chinese_nlu, tiny_bert,
                                                              tmp_path, capsys):
    """By default the English vocabulary is extended with the data's characters: the run
    records them, trains their embeddings, and loads them again to predict."""
    run = tmp_path / "run"
    assert main(train_args("nlu", chinese_nlu, tiny_bert, run, "--set", "train.epochs=2")) == 0
    summary = json.loads(capsys.readouterr().out)
    characters = {ch for text in TEXTS for ch in text if ch not in " "}
    assert summary["added_tokens"] == len(characters) and summary["unknown_characters"] == 0.0
    config = (run / "config.yaml").read_text(encoding="utf-8")
    assert "add_tokens" in config and "王" in config
    predictor = load_classifier(run)
    encoded = predictor.tokenizer("给王伟转五百元", add_special_tokens=False,
                                  return_offsets_mapping=True)
    assert predictor.tokenizer.unk_token_id not in encoded["input_ids"]
    assert encoded["offset_mapping"] == [(i, i + 1) for i in range(7)]  # one per character
    assert main(["predict", str(run), "给王伟转五百元", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)[0]
    for slot in predicted["slots"]:
        assert "给王伟转五百元"[slot["start"]:slot["end"]] == slot["value"]


@pytest.mark.parametrize("model", ["cjk_bert", "byte_level_lm"])
def test_chinese_nlu_trains_and_predicts_exact_spans(model, request, chinese_nlu, tmp_path,
                                                     capsys):
    folder = request.getfixturevalue(model)
    run = tmp_path / "run"
    assert main(train_args("nlu", chinese_nlu, folder, run, "--set", "train.epochs=2")) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unknown_characters"] == 0.0 and summary["slot_types"] == 3
    text = "帮我给王伟转五百元"
    assert main(["predict", str(run), text, "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)[0]
    assert predicted["intents"][0]["intent"] in {"转账", "查余额", "挂失"}
    for slot in predicted["slots"]:  # whatever a 2-epoch model finds, it is exact text
        assert text[slot["start"]:slot["end"]] == slot["value"]
