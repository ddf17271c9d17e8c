"""The training loop's epoch hook: callbacks with ``epoch_end`` learn each epoch's
validation metrics and step counts, and may stop the run with ``StopTraining``."""

from __future__ import annotations

import pytest

from dialogtune import load_config, train_run
from dialogtune.runs.layout import RunDir
from dialogtune.train import EpochEnd, StopTraining


class Recorder:
    def __init__(self, stop_at: int | None = None):
        self.steps, self.ends, self.stop_at = [], [], stop_at

    def __call__(self, step: int) -> None:
        self.steps.append(step)

    def epoch_end(self, end: EpochEnd) -> None:
        self.ends.append(end)
        if end.epoch == self.stop_at:
            raise StopTraining(f"stopped after epoch {end.epoch}")


def _config(tiny_bert, intent_csv, tmp_path, *extra):
    # 24 utterances, 6 held out: 18 to train, batch 6 → 3 steps an epoch, 3 epochs
    return load_config(None, ["train.batch_size=6", "train.epochs=3", "train.min_steps=0",
                              "data.val_fraction=0.25", *extra],
                       task="intent", **{"model.name": tiny_bert, "data.train": str(intent_csv),
                                         "output": str(tmp_path / "run")})


def test_epoch_callbacks_see_every_epoch_with_its_metrics(tiny_bert, intent_csv, tmp_path,
                                                          one_thread):
    recorder = Recorder()
    train_run(_config(tiny_bert, intent_csv, tmp_path), callbacks=[recorder])
    assert [e.epoch for e in recorder.ends] == [1, 2, 3]
    assert [e.step for e in recorder.ends] == [3, 6, 9]
    assert {(e.steps_per_epoch, e.total_steps) for e in recorder.ends} == {(3, 9)}
    assert all(0.0 <= e.metrics["accuracy"] <= 1.0 and "loss" in e.metrics
               for e in recorder.ends)
    assert recorder.steps == list(range(1, 10))  # step callbacks still called every step


def test_stop_training_ends_the_run_after_that_epoch_and_reaches_the_caller(
        tiny_bert, intent_csv, tmp_path, one_thread):
    recorder = Recorder(stop_at=1)
    with pytest.raises(StopTraining, match="after epoch 1"):
        train_run(_config(tiny_bert, intent_csv, tmp_path), callbacks=[recorder])
    assert recorder.steps == [1, 2, 3] and len(recorder.ends) == 1
    run = RunDir(tmp_path / "run")
    assert not run.weights.exists()  # an unfinished run, never mistaken for a trained one
    assert run.checkpoint.path.exists()  # the epoch's checkpoint was written before the hook


def test_without_validation_the_hook_gets_empty_metrics(tiny_bert, intent_csv, tmp_path,
                                                        one_thread):
    recorder = Recorder()
    train_run(_config(tiny_bert, intent_csv, tmp_path, "data.val_fraction=0",
                      "train.epochs=1"), callbacks=[recorder])
    assert [(e.epoch, e.metrics) for e in recorder.ends] == [(1, {})]
