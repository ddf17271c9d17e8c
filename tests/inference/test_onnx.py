"""ONNX exports of intent and NLU runs (``export --format onnx``) and the onnx backend:
the same results as the torch predictors within stated tolerances.

Tolerances: the float32 graph's logits within 1e-4 of torch's (the export itself refuses
more), probabilities within 1e-5, the same ranking, out-of-scope flags and slots (names,
offsets, values; confidences within 1e-4). int8: the same top intent on every training
utterance of the tiny runs (they are far from the decision boundary; BANKING77's figure
is in benchmarks/intent_onnx.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST, INTENT_EXAMPLES, nlu_records, tiny_intent_run, tiny_nlu_bert, tiny_nlu_run

from dialogtune.config import load_config
from dialogtune.export.onnx import export_onnx
from dialogtune.inference.intent import load_classifier
from dialogtune.inference.nlu import NluPredictor
from dialogtune.inference.onnx import OnnxGraph
from dialogtune.pipeline import train_run

TEXTS = [text for texts in INTENT_EXAMPLES.values() for text in texts] + [
    "hello", "thanks bye", "what can you help me with", "check my stolen card balance"]
NLU_TEXTS = [r["text"] for r in nlu_records()] + [
    "hello", "send ten dollars to sara", "check my joint balance please"]


@pytest.fixture(scope="module")
def intent_run(tmp_path_factory, tiny_bert) -> Path:
    return tiny_intent_run(tmp_path_factory.mktemp("onnx_intent"), tiny_bert)


@pytest.fixture(scope="module")
def cosine_lora_run(tmp_path_factory, tiny_bert) -> Path:
    """A LoRA run with the cosine head: the adapters must fold into the exported graph."""
    from helpers import write_intent_csv

    root = tmp_path_factory.mktemp("onnx_cosine")
    data = write_intent_csv(root / "train.csv")
    cfg = load_config(None, ["train.max_steps=6", "train.batch_size=8", "model.head=cosine",
                             "strategy.name=lora", "strategy.lora_r=4",
                             "data.val_fraction=0.25"],
                      task="intent", **{"model.name": tiny_bert, "data.train": str(data),
                                        "output": str(root / "run")})
    train_run(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def nlu_run(tmp_path_factory) -> Path:
    return tiny_nlu_run(tmp_path_factory.mktemp("onnx_nlu"))


@pytest.fixture(scope="module")
def crf_run(tmp_path_factory) -> Path:
    from helpers import write_jsonl

    root = tmp_path_factory.mktemp("onnx_crf")
    (root / "bert").mkdir()
    data = write_jsonl(root / "train.jsonl", nlu_records())
    cfg = load_config(None, [*FAST, "train.epochs=6", "model.slot_decoder=crf"], **{
        "task": "nlu", "data.train": str(data), "data.eval": str(data),
        "model.name": tiny_nlu_bert(root / "bert"), "output": str(root / "run")})
    train_run(cfg)
    return root / "run"


def graph_logits(predictor, texts: list[str]):
    """The raw logits of a predictor's model (torch or ONNX) for one padded batch."""
    import torch

    from dialogtune.data.encode.batching import pad_batch
    from dialogtune.data.encode.intent import encode_texts

    batch = pad_batch(encode_texts(predictor.tokenizer, texts, 64), 0)
    with torch.no_grad():
        out = predictor.model(input_ids=batch["input_ids"],
                              attention_mask=batch["attention_mask"])
    return out if isinstance(out, torch.Tensor) else out.intent_logits


def assert_same_results(expected: list[dict], found: list[dict], threshold: float | None,
                        atol: float = 1e-5) -> None:
    """Same ranking and probabilities; the same out-of-scope flag except where the top
    probability lies within ``atol`` of the threshold (the threshold is calibrated on
    validation utterances, so one of them sits exactly on it: float rounding decides)."""
    for want, got in zip(expected, found, strict=True):
        assert [r["intent"] for r in got["intents"]] == [r["intent"] for r in want["intents"]]
        assert np.allclose([r["probability"] for r in got["intents"]],
                           [r["probability"] for r in want["intents"]], atol=atol)
        top = want["intents"][0]["probability"]
        if threshold is None or abs(top - threshold) > atol:
            assert got["out_of_scope"] == want["out_of_scope"]
    assert any(r["out_of_scope"] for r in expected) and not all(r["out_of_scope"]
                                                                for r in expected)


@pytest.mark.parametrize("which", ["intent_run", "cosine_lora_run"])
def test_float32_export_gives_the_runs_logits_and_results(which, request, tmp_path,
                                                          one_thread):
    run = request.getfixturevalue(which)
    manifest = export_onnx(run, tmp_path / "onnx")
    assert set(manifest["check"]) == {"float32"}
    assert manifest["check"]["float32"]["max_abs_logit_difference"] <= 1e-4
    torch_predictor = load_classifier(run)
    onnx_predictor = load_classifier(tmp_path / "onnx", backend="onnx")
    assert isinstance(onnx_predictor.model, OnnxGraph)
    assert onnx_predictor.oos_threshold == torch_predictor.oos_threshold is not None
    assert onnx_predictor.labels.labels == torch_predictor.labels.labels
    gap = (graph_logits(torch_predictor, TEXTS) - graph_logits(onnx_predictor, TEXTS)).abs()
    assert gap.max().item() <= 1e-4
    assert_same_results(torch_predictor.classify(TEXTS), onnx_predictor.classify(TEXTS),
                        torch_predictor.oos_threshold)


def test_int8_export_keeps_the_top_intent(intent_run, tmp_path, one_thread):
    manifest = export_onnx(intent_run, tmp_path / "int8", quantize="int8")
    assert manifest["quantize"] == "int8" and set(manifest["check"]) == {"float32", "int8"}
    expected = load_classifier(intent_run).probabilities(TEXTS)
    found = load_classifier(tmp_path / "int8", backend="onnx").probabilities(TEXTS)
    assert (expected.argmax(1) == found.argmax(1)).all()
    assert not np.allclose(expected, found, atol=1e-6)  # the int8 graph is another graph
    assert np.abs(expected - found).max() < 0.05


@pytest.mark.parametrize("which", ["nlu_run", "crf_run"])
def test_nlu_export_gives_the_same_intents_and_slots(which, request, tmp_path, one_thread):
    run = request.getfixturevalue(which)
    export_onnx(run, run / "onnx")  # found there by --backend onnx given the run folder
    torch_predictor = load_classifier(run)
    onnx_predictor = load_classifier(run, backend="onnx")
    assert isinstance(onnx_predictor, NluPredictor)
    assert (onnx_predictor.model.classifier.crf is None) == (which == "nlu_run")
    expected, found = torch_predictor.classify(NLU_TEXTS), onnx_predictor.classify(NLU_TEXTS)
    assert_same_results(expected, found, torch_predictor.oos_threshold)
    slots = [(s["slot"], s["start"], s["end"], s["value"]) for r in found for s in r["slots"]]
    assert slots == [(s["slot"], s["start"], s["end"], s["value"])
                     for r in expected for s in r["slots"]]
    assert len(slots) > len(NLU_TEXTS)  # the run learned slots: the check compares some
    assert np.allclose([s["confidence"] for r in found for s in r["slots"]],
                       [s["confidence"] for r in expected for s in r["slots"]], atol=1e-4)
    for result in found:
        for slot in result["slots"]:
            assert result["text"][slot["start"]:slot["end"]] == slot["value"]


def test_the_export_folder_is_complete_and_leaves_no_temporaries(nlu_run, tmp_path):
    manifest = export_onnx(nlu_run, tmp_path / "out" / "onnx")
    files = set(manifest["files"])
    assert {"model.onnx", "dialogtune_export.json", "config.yaml", "label_map.json",
            "slot_labels.json", "run.json", "tokenizer.json"} <= files
    assert files == {p.name for p in (tmp_path / "out" / "onnx").iterdir()}
    assert manifest["outputs"] == ["intent_logits", "slot_logits"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["onnx"]
    assert json.loads((tmp_path / "out" / "onnx" / "dialogtune_export.json").read_text()) \
        == manifest
