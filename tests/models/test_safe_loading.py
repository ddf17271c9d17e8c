"""Loading never runs code unless the command line allows it: pickle weights are refused
everywhere without --allow-pickle, and a run's config cannot grant trust_remote_code to
chat/generate/predict/eval on its own (issue 9, item 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from helpers import write_intent_csv
from dialogtune.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def pickle_copy(source: str | Path, target: Path) -> Path:
    """``source`` (a safetensors HF folder) with its weights as pickle ``pytorch_model.bin``."""
    from safetensors.torch import load_file

    shutil.copytree(source, target)
    weights = target / "model.safetensors"
    torch.save(load_file(str(weights)), target / "pytorch_model.bin")
    weights.unlink()
    return target


def edited_run(run: Path, target: Path, **model) -> Path:
    """A copy of ``run`` whose config.yaml has ``model`` settings replaced."""
    shutil.copytree(run, target)
    cfg = yaml.safe_load((target / "config.yaml").read_text())
    cfg["model"].update(model)
    (target / "config.yaml").write_text(yaml.safe_dump(cfg))
    return target


def error_of(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_pickle_weights_are_refused_by_train_predict_chat_and_serve(tiny_bert, intent_run,
                                                                    folder, tmp_path, capsys):
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.errors import DialogtuneError
    from dialogtune.serve.runtime import load_models

    bert = pickle_copy(tiny_bert, tmp_path / "pickled_bert")
    csv = write_intent_csv(tmp_path / "train.csv")
    assert main(["train", "--data", str(csv), "--output", str(tmp_path / "run"),
                 "--model", str(bert), "--set", "train.max_steps=1"]) == 2
    assert str(bert) in error_of(capsys) and not (tmp_path / "run" / "model.safetensors").exists()

    run = edited_run(intent_run, tmp_path / "run_on_pickle", name=str(bert))
    assert main(["predict", str(run), "lost card"]) == 2
    assert str(bert) in error_of(capsys)
    assert main(["eval", str(run), "--data", str(csv)]) == 2
    assert "--allow-pickle" in error_of(capsys)
    assert main(["predict", str(run), "lost card", "--allow-pickle"]) == 0  # when asked

    llama = pickle_copy(folder, tmp_path / "pickled_llama")
    with pytest.raises(DialogtuneError, match="only safetensors"):
        ChatPredictor.load(llama)
    with pytest.raises(DialogtuneError, match="only safetensors"):
        load_models(None, llama)
    assert ChatPredictor.load(llama, _policy(allow_pickle=True)).name == "pickled_llama"


def _policy(**allowed):
    from dialogtune.models.loading import LoadPolicy

    return LoadPolicy(**allowed)


def test_a_run_config_cannot_grant_trust_remote_code(intent_run, tmp_path, capsys):
    run = edited_run(intent_run, tmp_path / "trusting", trust_remote_code=True)
    csv = write_intent_csv(tmp_path / "test.csv")
    for argv in (["predict", str(run), "lost card"], ["eval", str(run), "--data", str(csv)]):
        assert main(argv) == 2
        assert "--trust-remote-code" in error_of(capsys)
    assert main(["predict", str(run), "lost card", "--trust-remote-code"]) == 0


def test_chat_verbs_need_the_flag_for_a_trusting_chat_run(folder, data, tmp_path, capsys,
                                                          monkeypatch):
    from dialogtune.config import load_config
    from dialogtune.pipeline import train_run

    run = tmp_path / "chat_run"
    train_run(load_config(None, ["train.max_steps=1", "train.num_threads=1"], task="chat",
                          output=str(run), **{"data.train": str(data), "model.name": folder}))
    capsys.readouterr()  # training's progress
    trusting = edited_run(run, tmp_path / "trusting_chat", trust_remote_code=True)
    for argv in (["chat", str(trusting)], ["generate", str(trusting), "--data", str(data)],
                 ["eval", str(trusting), "--data", str(data)],
                 ["export", str(trusting), "--merge", "--output", str(tmp_path / "out")]):
        assert main(argv) == 2, argv
        assert "needs trust_remote_code" in error_of(capsys)
    monkeypatch.setattr("builtins.input", lambda _: "/exit")
    assert main(["chat", str(trusting), "--trust-remote-code"]) == 0
    assert main(["export", str(trusting), "--merge", "--output", str(tmp_path / "out"),
                 "--trust-remote-code"]) == 0
