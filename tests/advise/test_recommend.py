"""``recommend``: budget parsing, the estimate's arithmetic, the JSON it writes, and a train
run with the settings it recommends (no timing is asserted: speeds go in benchmarks/)."""

from __future__ import annotations

import json
import shlex

import pytest

from dialogtune.advise.measure import Measurement
from dialogtune.advise.recommend import fit_to_budget, parse_budget, plan, planned_epochs
from dialogtune.cli import main
from dialogtune.config import TrainConfig
from dialogtune.errors import ConfigError


def _measured(**changes) -> Measurement:
    values = dict(model="minilm", strategy="full", batch_size=32, seconds_per_step=0.25,
                  steps_timed=5, startup_seconds=4.0, epoch_end_seconds=3.0,
                  finish_seconds=2.0, steps_per_epoch=13, threads=2)
    return Measurement(**{**values, **changes})


@pytest.mark.parametrize("text, seconds", [("10m", 600), ("90s", 90), ("1h", 3600),
                                           ("600", 600), ("1.5h", 5400), (None, None)])
def test_budgets_read_as_seconds(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["10x", "m10", "", "-5m", "0s", "10 minutes"])
def test_a_bad_budget_is_refused_in_one_line(text):
    with pytest.raises(ConfigError, match=r"^--budget .*: expected a positive duration "
                                          r"such as 90s, 10m or 1h$"):
        parse_budget(text)


def test_a_bad_budget_stops_the_command_before_anything_is_measured(capsys, tmp_path):
    assert main(["recommend", "--task", "intent", "--data", str(tmp_path / "none.csv"),
                 "--budget", "10x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --budget '10x': expected a positive duration such as 90s, 10m or 1h")


def test_small_data_gets_the_epochs_min_steps_gives_it():
    train = TrainConfig(epochs=2, min_steps=100)
    assert planned_epochs(train, 13) == 7.69  # 100 steps at 13 a epoch, rounded down
    assert planned_epochs(train, 282) == 2  # BANKING77: the default epochs
    budget = TrainConfig(epochs=4, step_budget=600, min_epochs=2, min_steps=100)
    assert planned_epochs(budget, 313) == 2  # BANKING77: the budget's 626 steps, not 4 epochs
    assert planned_epochs(budget, 119) == 4  # short epochs: every default epoch
    estimate = plan(_measured(), train.model_copy(update={"epochs": 7.69}), 1.5)
    assert (estimate.steps, estimate.epoch_ends) == (100, 8)  # min_steps still holds


def test_the_estimate_is_the_sum_its_formula_shows():
    estimate = plan(_measured(), TrainConfig(epochs=2, min_steps=0), import_seconds=1.5)
    assert (estimate.steps, estimate.epoch_ends) == (26, 2)
    expected = 1.5 + 4.0 + 26 * 0.25 + 2 * 3.0 + 2.0
    assert estimate.seconds == pytest.approx(expected)
    assert estimate.formula == (
        "1.5 s imports + 4.0 s start (model, data) + 26 steps (13 per epoch × 2 epochs) × "
        "0.250 s + 2 epoch ends (validation, checkpoint) × 3.00 s + 2.0 s final files = "
        f"{expected:.1f} s")


def test_early_stopping_can_end_a_run_after_patience_epochs_past_half_way():
    from dialogtune.advise.recommend import earliest_stop

    # epochs end at 13, 26, ..., 91; bad epochs count from step 50: 52 and 65
    assert earliest_stop(13, 100, patience=2) == 65
    assert earliest_stop(55, 110, patience=2) == 110  # one epoch end after half way
    estimate = plan(_measured(), TrainConfig(epochs=2, min_steps=100), 1.5)
    assert estimate.seconds_for(65) == pytest.approx(1.5 + 4.0 + 65 * 0.25 + 5 * 3.0 + 2.0)


def test_a_later_candidate_pays_the_first_ones_cold_start():
    cold = _measured(startup_seconds=9.0, finish_seconds=5.0)
    warm = plan(_measured(strategy="lora", startup_seconds=1.0), TrainConfig(epochs=1,
                                                                             min_steps=0),
                0.0, cold)
    assert (warm.startup_seconds, warm.finish_seconds) == (9.0, 5.0)


def test_a_run_cut_to_a_budget_fits_it():
    estimate = plan(_measured(), TrainConfig(epochs=2, min_steps=100), 1.5)
    capped = fit_to_budget(estimate, TrainConfig(epochs=2, min_steps=100), budget=20.0)
    assert capped.max_steps < 100
    assert plan(_measured(), capped, 1.5).seconds <= 20.0


def test_recommend_writes_its_json_and_its_train_command_runs(tiny_bert, intent_csv,
                                                              tmp_path, capsys, one_thread):
    out = tmp_path / "advice"
    assert main(["recommend", "--task", "intent", "--data", str(intent_csv),
                 "--model", tiny_bert, "--steps", "2", "--batch-size", "8",
                 "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "recommend.json").read_text())
    assert printed == written
    assert {"model", "strategy", "epochs", "batch_size", "estimated_train_seconds", "formula",
            "measured", "reason", "train"} <= set(written)
    assert (written["model"], written["strategy"], written["batch_size"]) == (tiny_bert,
                                                                             "full", 8)
    # 24 utterances, 3 held out (10 %, one an intent): 21 → 3 batches of 8; min_steps 100
    assert (written["steps_per_epoch"], written["steps"]) == (3, 100)
    assert written["epochs"] == 33.33
    candidate = written["measured"]["candidates"][0]
    assert candidate["steps_timed"] == 2 and candidate["seconds_per_step"] > 0
    assert written["formula"].endswith(f"= {written['estimated_train_seconds']:.1f} s")
    words = shlex.split(written["train"])
    assert words[:2] == ["dialogtune", "train"]
    run = tmp_path / "run"
    words[words.index("--output") + 1] = str(run)
    assert main(words[1:]) == 0
    summary = json.loads((run / "run.json").read_text())
    assert summary["steps"] == written["steps"] and summary["strategy"] == "full"
