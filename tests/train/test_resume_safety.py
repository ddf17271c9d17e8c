"""Resuming is safe: damaged checkpoints are detected, runs are finished only with their
run.json, and a checkpoint is never continued with other settings or data."""

from __future__ import annotations

import json
import logging

import pytest

import dialogtune.tasks.intent as intent_run
from dialogtune.checkpoint import checkpoint_problem, find_checkpoint, save_checkpoint
from dialogtune.errors import DialogtuneError
from dialogtune.inference.intent import Predictor
from dialogtune.tasks.intent import train_intent

from helpers import INTENT_EXAMPLES, Interrupt, write_intent_csv
from test_checkpoint_resume import assert_same_tensors, run_config, small_model_and_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")
EXTRA = ("train.epochs=1", "train.save_every_steps=2", "train.num_threads=1")


def truncate(path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip"])
def test_damaged_newest_checkpoint_falls_back_to_previous(damage, tmp_path, caplog):
    model, optimizer = small_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 1})
    save_checkpoint(folder, model, optimizer, {"step": 2})
    assert checkpoint_problem(folder) is None and find_checkpoint(folder) == folder
    weights = folder / "model.safetensors"
    if damage == "truncate":
        truncate(weights)
    elif damage == "delete":
        weights.unlink()
    else:  # same size, one byte changed: only the checksum sees it
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        assert find_checkpoint(folder) == tmp_path / "checkpoint.old"
    assert "model.safetensors" in caplog.text and "damaged" in caplog.text
    truncate(tmp_path / "checkpoint.old" / "optimizer.safetensors")
    assert find_checkpoint(folder) is None  # nothing sound left: the run starts over


def test_resume_skips_a_truncated_checkpoint_and_matches_an_unbroken_run(
        tiny_bert, intent_csv, tmp_path):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    train_intent(run_config(run_a, intent_csv, tiny_bert, *EXTRA))
    cfg = run_config(run_b, intent_csv, tiny_bert, *EXTRA)
    with pytest.raises(KeyboardInterrupt):
        train_intent(cfg, callbacks=[Interrupt(5)])  # checkpoints at steps 2 and 4
    truncate(run_b / "checkpoint" / "model.safetensors")
    seen: list[int] = []
    summary = train_intent(cfg, resume=True, callbacks=[seen.append])
    assert seen[0] == 3, "resumed from the step-2 checkpoint, not the damaged step-4 one"
    assert summary["steps"] == 6
    for name in ("model.safetensors", "checkpoint/model.safetensors",
                 "checkpoint/optimizer.safetensors"):
        assert_same_tensors(run_a / name, run_b / name)


def test_a_resumed_run_keeps_the_precision_it_started_in(tiny_bert, intent_csv, tmp_path,
                                                         monkeypatch):
    """``auto`` is a timing: the probe of the resumed process may choose otherwise."""
    import dialogtune.train as loop

    cfg = run_config(tmp_path / "run", intent_csv, tiny_bert, *EXTRA)
    monkeypatch.setattr(loop, "resolve_precision", lambda asked, device="cpu": "bf16")
    with pytest.raises(KeyboardInterrupt):
        train_intent(cfg, callbacks=[Interrupt(3)])
    monkeypatch.setattr(loop, "resolve_precision", lambda asked, device="cpu": "fp32")
    summary = train_intent(cfg, resume=True)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
    assert {r["precision"] for r in log if "precision" in r} == {"bf16"}
    assert summary["precision"] == "bf16"


def test_crash_before_run_json_leaves_an_unfinished_run(tiny_bert, intent_csv, tmp_path,
                                                        monkeypatch):
    """run.json holds the out-of-scope threshold: no servable weights may exist without it."""
    run = tmp_path / "run"
    cfg = run_config(run, intent_csv, tiny_bert, *EXTRA)
    real_write = intent_run.write_json_atomic

    def crash_at_run_json(data, path):
        if path.name == "run.json":
            raise KeyboardInterrupt  # the process dies here
        real_write(data, path)

    monkeypatch.setattr(intent_run, "write_json_atomic", crash_at_run_json)
    with pytest.raises(KeyboardInterrupt):
        train_intent(cfg)
    assert not (run / "run.json").exists()
    assert not (run / "model.safetensors").exists()
    with pytest.raises(DialogtuneError, match="training has not finished"):
        Predictor.from_run(run)
    monkeypatch.setattr(intent_run, "write_json_atomic", real_write)
    summary = train_intent(cfg, resume=True)
    saved = json.loads((run / "run.json").read_text())
    assert saved["oos_threshold"] == summary["oos_threshold"] is not None
    assert Predictor.from_run(run).oos_threshold == saved["oos_threshold"]


@pytest.fixture
def interrupted(tiny_bert, intent_csv, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_intent(run_config(run, intent_csv, tiny_bert, *EXTRA), callbacks=[Interrupt(3)])
    return run


def test_resume_refuses_changed_settings(interrupted, tiny_bert, intent_csv):
    config_before = (interrupted / "config.yaml").read_text()
    changed = run_config(interrupted, intent_csv, tiny_bert, *EXTRA, "train.lr=0.5")
    with pytest.raises(DialogtuneError) as info:
        train_intent(changed, resume=True)
    message = str(info.value)
    assert message.startswith(f"{interrupted / 'checkpoint'}: cannot resume: train.lr changed "
                              "from None to 0.5") and "\n" not in message
    assert (interrupted / "config.yaml").read_text() == config_before  # not overwritten
    # what may change between attempts: threads, checkpoint interval, the data's location
    moved = write_intent_csv(interrupted.parent / "moved.csv")
    same = run_config(interrupted, moved, tiny_bert, "train.epochs=1",
                      "train.save_every_steps=3", "train.num_threads=2")
    assert train_intent(same, resume=True)["steps"] == 6


def test_resume_refuses_changed_data(interrupted, tiny_bert, intent_csv):
    more = {**INTENT_EXAMPLES, "balance": [*INTENT_EXAMPLES["balance"], "balance now"]}
    write_intent_csv(intent_csv, more)
    with pytest.raises(DialogtuneError, match="cannot resume: the content of data.train "
                                              "changed"):
        train_intent(run_config(interrupted, intent_csv, tiny_bert, *EXTRA), resume=True)
