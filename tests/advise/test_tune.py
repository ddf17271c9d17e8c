"""``tune``: trials through the real pipeline, best.yaml that ``train --config`` takes,
resumption from SQLite, pruning, interrupted trials retried."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from dialogtune.advise.tune import open_study, tune
from dialogtune.cli import main
from dialogtune.tasks import get_task
from helpers import INTENT_EXAMPLES, write_intent_csv

# tiny BERT, 24 utterances (6 held out), batch 6 or 12, at most 4 epochs: about a second a trial
FIXED = ["data.val_fraction=0.25", "train.min_steps=0"]


def _tune(tiny_bert, intent_csv, out, trials, **kwargs):
    return tune("intent", str(intent_csv), trials, out,
                overrides=[*FIXED, f"model.name={tiny_bert}", "train.batch_size=6"], **kwargs)


@pytest.fixture
def study_dir(tiny_bert, intent_csv, tmp_path, one_thread):
    out = tmp_path / "tune"
    summary = _tune(tiny_bert, intent_csv, out, 3)
    return out, summary


def test_three_trials_write_a_best_config_that_train_takes(study_dir, intent_csv, tmp_path):
    out, summary = study_dir
    assert summary["trials_counted"] == 3 and summary["metric"] == "accuracy"
    assert len(summary["trials"]) == 3
    for trial in summary["trials"]:
        assert set(trial) >= {"number", "params", "value", "state", "seconds"}
        assert {"lr_factor", "epochs", "batch_size"} <= set(trial["params"])
    complete = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: t["value"])
    assert summary["best"]["value"] == best["value"]
    assert json.loads((out / "tune.json").read_text())["best"]["number"] == best["number"]
    assert (out / "optimization_history.png").stat().st_size > 1000
    written = yaml.safe_load((out / "best.yaml").read_text())
    assert written["output"] is None
    assert written["train"]["lr"] == pytest.approx(best["settings"]["train.lr"])
    assert written["train"]["epochs"] == best["params"]["epochs"]
    run = tmp_path / "from_best"
    assert main(["train", "--config", str(out / "best.yaml"), "--data", str(intent_csv),
                 "--output", str(run)]) == 0
    trained = yaml.safe_load((run / "config.yaml").read_text())
    assert trained["train"] == written["train"] and (run / "model.safetensors").exists()


def test_running_again_with_one_more_trial_runs_exactly_one(study_dir, tiny_bert, intent_csv):
    out, _ = study_dir
    summary = _tune(tiny_bert, intent_csv, out, 4)
    assert summary["trials_counted"] == 4
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2, 3]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0", "1", "2", "3"]
    # the resumed sampler does not draw the first trial's settings again
    assert summary["trials"][3]["params"] != summary["trials"][0]["params"]


def test_a_pruner_that_always_prunes_prunes_after_the_first_epoch(tiny_bert, intent_csv,
                                                                  tmp_path, one_thread):
    out = tmp_path / "pruned"
    summary = _tune(tiny_bert, intent_csv, out, 1,
                    pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # accuracy never ≥ 2
    (trial,) = summary["trials"]
    assert trial["state"] == "PRUNED" and list(trial["epochs_reported"]) == ["1"]
    assert summary["best"] is None and not (out / "best.yaml").exists()
    assert not (out / "trials" / "0" / "model.safetensors").exists()


def test_a_trial_left_running_is_marked_failed_and_retried(tiny_bert, intent_csv, tmp_path,
                                                           one_thread):
    out = tmp_path / "killed"
    out.mkdir()
    storage = f"sqlite:///{out / 'tune.db'}"
    study = open_study(storage, "killed", get_task("intent").objective, 42)
    trial = study.ask()  # as a killed process leaves it: RUNNING, with settings drawn
    trial.suggest_float("lr_factor", 0.25, 4.0, log=True)
    trial.suggest_int("epochs", 1, 4)
    trial.suggest_categorical("batch_size", [3, 6, 12])
    summary = _tune(tiny_bert, intent_csv, out, 1, storage=storage, study_name="killed")
    states = [(t["number"], t["state"], t["retry_of"]) for t in summary["trials"]]
    assert states == [(0, "FAIL", None), (1, "COMPLETE", 0)]
    assert summary["trials"][1]["params"] == summary["trials"][0]["params"]


def test_no_validation_is_a_one_line_error(tiny_bert, intent_csv, tmp_path, capsys):
    code = main(["tune", "--task", "intent", "--data", str(intent_csv), "--trials", "1",
                 "--output", str(tmp_path / "t"), "--set", f"model.name={tiny_bert}",
                 "--set", "data.val_fraction=0"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: tune needs a validation score each epoch: give --eval-data or keep "
        "data.val_fraction above 0"]
    assert not (tmp_path / "t" / "trials").exists()  # refused before any training


def test_trials_on_few_utterances_per_intent_still_hold_out_a_split(tiny_bert, tmp_path,
                                                                     one_thread):
    """Below 8 per intent an intent run trains on everything by default; a trial must not,
    or it would have no validation score to report."""
    few = {label: texts[:4] for label, texts in INTENT_EXAMPLES.items()}
    data = write_intent_csv(tmp_path / "few.csv", few)
    summary = tune("intent", str(data), 1, tmp_path / "t",
                   overrides=["train.min_steps=0", f"model.name={tiny_bert}",
                              "train.batch_size=6"])
    assert summary["trials"][0]["state"] == "COMPLETE"
    run = json.loads((tmp_path / "t" / "trials" / "0" / "run.json").read_text())
    assert run["validation_examples"] == len(few)
