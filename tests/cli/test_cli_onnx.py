"""``export --format onnx`` and ``--backend onnx`` through the command line and the server,
and the one-line errors of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import INTENT_EXAMPLES, tiny_intent_run, write_intent_csv

import dialogtune.export.onnx as onnx_export
from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.errors import DialogtuneError
from dialogtune.pipeline import train_run

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["i lost my card", "send money to my friend", "what is my balance", "hello"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert) -> Path:
    return tiny_intent_run(tmp_path_factory.mktemp("cli_onnx"), tiny_bert)


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run, free to hold an export."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def predicted(capsys, *args: str) -> list[dict]:
    assert main(["predict", *args, *TEXTS, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_export_predict_eval_round_trip(run, tmp_path, capsys):
    assert main(["export", str(run), "--format", "onnx", "--output", str(run / "onnx")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["kind"] == "onnx" and manifest["task"] == "intent"
    torch_results = predicted(capsys, str(run))
    for source in (run, run / "onnx"):  # the run folder (its onnx/) or the export itself
        onnx_results = predicted(capsys, str(source), "--backend", "onnx")
        for want, got in zip(torch_results, onnx_results, strict=True):
            assert [r["intent"] for r in got["intents"]] == [r["intent"] for r in want["intents"]]
            assert got["intents"][0]["probability"] == pytest.approx(
                want["intents"][0]["probability"], abs=1e-5)
    data = write_intent_csv(tmp_path / "test.csv")
    assert main(["eval", str(run), "--data", str(data), "--output", str(tmp_path / "t.json")]) == 0
    assert main(["eval", str(run), "--data", str(data), "--backend", "onnx"]) == 0
    expected = json.loads((tmp_path / "t.json").read_text())
    found = json.loads((run / "onnx" / "eval" / "metrics.json").read_text())  # the export's
    assert (expected["backend"], found["backend"]) == ("torch", "onnx")
    assert found["accuracy"] == expected["accuracy"] > 0.4  # above chance (1/3)
    assert found["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert not (run / "eval").exists()


def test_serve_answers_intents_from_the_export(run, tmp_path, capsys, monkeypatch):
    from dialogtune.inference.intent import load_classifier
    from dialogtune.inference.onnx import OnnxGraph
    from dialogtune.serve import ServeSettings, create_app
    import dialogtune.serve.runtime as runtime

    assert main(["export", str(run), "--format", "onnx", "--quantize", "int8",
                 "--output", str(tmp_path / "int8")]) == 0
    served = []
    monkeypatch.setattr(runtime, "run_server", lambda settings, *models: served.append(models))
    assert main(["serve", "--intent", str(tmp_path / "int8"), "--backend", "onnx"]) == 0
    [(predictor, chats, _reloader)] = served
    assert isinstance(predictor.model, OnnxGraph) and not chats
    expected = load_classifier(run).classify(TEXTS)
    with TestClient(create_app(ServeSettings(), intent_predictor=predictor),
                    base_url="http://localhost") as client:
        reply = client.post("/v1/intents", json={"texts": TEXTS})
    assert reply.status_code == 200, reply.text
    # int8: the same top intent as the torch run on these clear utterances
    assert [r["intents"][0]["intent"] for r in reply.json()["data"]] == \
        [r["intents"][0]["intent"] for r in expected]


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "--quantize", "int4"], "--quantize 'int4': expected one of int8"),
    (["--format", "onnx", "--merge"], "--merge applies to chat runs"),
    (["--format", "tflite"], "--format 'tflite': expected one of hf, gguf, onnx"),
    (["--quantize", "int8"], "--quantize goes with --format onnx"),
])
def test_export_refuses_options_that_do_not_fit(run, tmp_path, capsys, args, message):
    assert main(["export", str(run), "--output", str(tmp_path / "out"), *args]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_backend_errors_name_the_folder(run, tmp_path, capsys):
    assert main(["predict", str(run), "hello", "--backend", "onnx"]) == 2
    assert f"{run}: no ONNX export here or in {run / 'onnx'}" in error_line(
        capsys.readouterr().err)
    assert main(["predict", str(run), "hello", "--backend", "tpu"]) == 2
    assert "--backend 'tpu': expected one of torch, onnx" in error_line(capsys.readouterr().err)
    assert main(["export", str(run), "--format", "onnx", "--output", str(tmp_path / "x")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "x"), "hello"]) == 2  # torch on an export
    assert "an ONNX export, not a run; read it with --backend onnx" in error_line(
        capsys.readouterr().err)
    assert main(["export", str(run), "--format", "onnx", "--output", str(tmp_path / "x")]) == 2
    assert f"{tmp_path / 'x'} exists and is not an empty folder" in error_line(
        capsys.readouterr().err)


def test_a_chat_run_is_refused(run, tmp_path, capsys):
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("task: intent", "task: chat"))
    assert main(["export", str(run), "--format", "onnx", "--output", str(tmp_path / "o")]) == 2
    assert "a chat run, not an intent or NLU run" in error_line(capsys.readouterr().err)
    assert main(["eval", str(run), "--data", "x.jsonl", "--backend", "onnx"]) == 2
    assert "--backend onnx applies to intent and NLU runs" in error_line(
        capsys.readouterr().err)


def test_a_prompt_tuning_run_is_refused(tiny_bert, tmp_path):
    data = write_intent_csv(tmp_path / "train.csv", INTENT_EXAMPLES)
    cfg = load_config(None, ["train.max_steps=1", "strategy.name=prompt-tuning",
                             "data.val_fraction=0"], task="intent",
                      **{"model.name": tiny_bert, "data.train": str(data),
                         "output": str(tmp_path / "pt")})
    train_run(cfg)
    with pytest.raises(DialogtuneError, match="virtual tokens that an ONNX export does not"):
        onnx_export.export_onnx(tmp_path / "pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("failure", ["tolerance", "quantizer"])
def test_a_failed_export_leaves_nothing(run, tmp_path, monkeypatch, failure):
    """The float32 check can fail (a tolerance below any float difference here), and so
    can a later step: either way no folder and no temporary is left."""
    if failure == "tolerance":
        monkeypatch.setattr(onnx_export, "FP32_ATOL", -1.0)
        expected = "the ONNX graph's logits differ from the run's"
    else:
        def broken(_path):
            raise DialogtuneError("quantizer failed")
        monkeypatch.setattr(onnx_export, "quantize_int8", broken)
        expected = "quantizer failed"
    output = tmp_path / "exports" / "onnx"
    with pytest.raises(DialogtuneError, match=expected):
        onnx_export.export_onnx(run, output, quantize="int8")
    assert list((tmp_path / "exports").iterdir()) == []


def test_an_export_of_older_weights_is_refused(run, capsys):
    """A run trained again after its export must not be answered by the old graph."""
    from safetensors.torch import load_file, save_file

    assert main(["export", str(run), "--format", "onnx", "--output", str(run / "onnx")]) == 0
    capsys.readouterr()
    weights = run / "model.safetensors"
    save_file({name: tensor + 1 for name, tensor in load_file(str(weights)).items()},
              str(weights))
    assert main(["predict", str(run), "hello", "--backend", "onnx"]) == 2
    assert f"{run / 'onnx'} was exported from other weights than {weights}" in error_line(
        capsys.readouterr().err)
    assert main(["predict", str(run / "onnx"), "hello", "--backend", "onnx"]) == 0  # as asked
