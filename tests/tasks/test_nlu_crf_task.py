"""``--task nlu --set model.slot_decoder=crf`` end to end: the run trains, saves its CRF,
and eval / predict on the saved run give what the trained model validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FAST
from safetensors.torch import load_file

from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.errors import ConfigError
from dialogtune.inference.nlu import NluPredictor
from dialogtune.models.nlu import slot_crf
from dialogtune.pipeline import evaluate_run, train_run
from test_nlu_task import nlu_bert, nlu_data  # noqa: F401  (the same module fixtures)


def config(run: Path, data: Path, model: str, *overrides: str):
    return load_config(None, [*FAST, "model.slot_decoder=crf", *overrides], **{
        "task": "nlu", "data.train": str(data), "data.eval": str(data),
        "model.name": model, "output": str(run)})


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_crf_run_saves_reloads_and_predicts(strategy, nlu_bert, nlu_data, tmp_path,
                                            one_thread, capsys):
    """The saved run holds the CRF's weights, reloads them, and eval on the validation
    file gives the best epoch's scores: the reloaded model decodes the same spans."""
    run = tmp_path / strategy
    # LoRA on this random tiny encoder needs higher rates to learn slots in a few steps
    lora = ["strategy.lora_r=4", "train.lr=1e-2", "train.head_lr_multiplier=100"]
    summary = train_run(config(run, nlu_data, nlu_bert, "train.epochs=8",
                               f"strategy.name={strategy}", *(lora if strategy == "lora"
                                                              else [])))
    assert summary["strategy"] == strategy
    saved = load_file(str(run / "model.safetensors"))
    crf_keys = [k for k in saved if ".crf." in k]
    assert len(crf_keys) == 3, sorted(saved)[:5]
    predictor = NluPredictor.from_run(run)
    transitions = next(v for k, v in saved.items() if k.endswith("crf.crf.transitions"))
    assert (slot_crf(predictor.model).crf.transitions == transitions).all()
    validation = json.loads((run / "metrics.json").read_text())["validation"]
    assert validation["slot_f1"] > 0.5, validation  # it learned slots
    metrics = evaluate_run(run, str(nlu_data))
    for key in ("slot_f1", "slot_precision", "sentence_accuracy", "accuracy"):
        assert metrics[key] == pytest.approx(validation[key]), key
    text = "send fifty dollars to omar"
    assert main(["predict", str(run), text, "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["slots"] == predictor.classify([text])[0]["slots"]
    for slot in result["slots"]:
        assert text[slot["start"]:slot["end"]] == slot["value"]


def test_crf_refuses_labels_on_every_piece(nlu_bert, nlu_data, tmp_path):
    with pytest.raises(ConfigError, match="data.slot_labels=all"):
        train_run(config(tmp_path / "run", nlu_data, nlu_bert, "data.slot_labels=all"))
