"""``dialogtune curve``: subsamples, the points and their spread, the fitted inverse power
law and the estimate of the data needed for a target (checked on known curves)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dialogtune.cli import main
from dialogtune.data.transform.split import fraction_indices
from dialogtune.study.curve import size_plan
from dialogtune.study.fit import estimate, examples_for, fit_power_law, power_law

from helpers import write_intent_csv


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_curve_points_spread_fit_and_estimate(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train = write_intent_csv(tmp_path / "train.csv")
    out = tmp_path / "curve"
    assert main(["curve", "--task", "intent", "--data", str(train), "--eval-data", str(train),
                 "--model", tiny_bert, "--shots", "3,8", "--seeds", "2", "--target", "0.95",
                 "--epochs", "1", "--set", "train.batch_size=8", "--set", "train.min_steps=0",
                 "--output", str(out)]) == 0
    curve = json.loads((out / "curve.json").read_text())
    assert curve["metric"] == "accuracy" and curve["labels"] == 3
    assert sorted((p["size"], p["seed"], p["shots"]) for p in curve["points"]) == [
        (9, 42, 3), (9, 43, 3), (24, 42, 8), (24, 43, 8)]
    for size in curve["sizes"]:
        values = [p["value"] for p in curve["points"] if p["size"] == size["size"]]
        assert size["seeds"] == 2 and size["mean"] == pytest.approx(np.mean(values))
        assert size["std"] == pytest.approx(np.std(values, ddof=1))
    fit = curve["fit"]
    assert fit["exponent_fixed"] is True and fit["c"] == 0.5  # two sizes: c is not determined
    result = curve["estimate"]
    assert result["target"] == 0.95 and result["bootstrap_samples"] == 200
    assert result["statement"].startswith("0.95: ")
    if fit["a"] > 0.95:
        assert result["examples"] == pytest.approx(examples_for(fit, 0.95), abs=1)
    else:
        assert result["examples"] is None and "not reached" in result["statement"]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # each subsample in the training file's own format, K per intent
    assert len((out / "data" / "shots3_seed42.csv").read_text().splitlines()) == 1 + 9
    assert "0.95: " in capsys.readouterr().out


def test_fit_recovers_a_known_rising_curve_and_its_target():
    sizes = [10, 20, 50, 100, 200, 500] * 2
    values = list(power_law(sizes, 0.92, 0.8, 0.6))
    fit = fit_power_law(sizes, values)
    assert (fit["a"], fit["b"], fit["c"]) == pytest.approx((0.92, 0.8, 0.6), rel=1e-3)
    truth = (0.8 / (0.92 - 0.9)) ** (1 / 0.6)  # a - b n^-c = 0.9
    result = estimate(list(zip(sizes, values)), 0.9)
    assert result["examples"] == pytest.approx(truth, rel=0.01)
    low, high = result["interval"]
    assert low - 1 <= truth <= high + 1 and result["reached_share"] == 1.0
    assert "training examples" in result["statement"]


def test_fit_of_a_falling_metric_and_a_target_beyond_the_ceiling():
    sizes = [20, 50, 100, 400]
    perplexity = list(power_law(sizes, 5.0, 20.0, 0.5, rising=False))
    fit = fit_power_law(sizes, perplexity, rising=False)
    assert fit["a"] == pytest.approx(5.0, rel=1e-3)
    assert examples_for(fit, 6.0, rising=False) == pytest.approx(400, rel=0.01)
    accuracy = list(power_law(sizes, 0.8, 0.5, 0.5))
    result = estimate(list(zip(sizes, accuracy)), 0.9)
    assert result["examples"] is None
    assert "not reached within the fitted curve's ceiling (0.8" in result["statement"]


def test_fraction_subsamples_keep_every_intent():
    labels = ["a"] * 10 + ["b"] * 4 + ["c"]
    chosen = fraction_indices(labels, 0.25, seed=1)
    kept = [labels[i] for i in chosen]
    assert (kept.count("a"), kept.count("b"), kept.count("c")) == (2, 1, 1)
    assert chosen == sorted(chosen) and fraction_indices(labels, 1, 3) == list(range(15))
    assert chosen == fraction_indices(labels, 0.25, seed=1)


@pytest.mark.parametrize("fractions, shots, message", [
    ("0.5,1.5", None, "--fractions: 1.5 is outside (0, 1]"),
    ("0,0.5", None, "--fractions: 0 is outside (0, 1]"),
    (None, "0,5", "--shots: 0 is not a whole number"),
    ("0.5", "5", "give --fractions or --shots, not both"),
    ("a,b", None, "expected comma-separated numbers"),
])
def test_bad_sizes_are_one_line(tmp_path, capsys, fractions, shots, message):
    train = write_intent_csv(tmp_path / "train.csv")
    args = ["curve", "--data", str(train), "--eval-data", str(train),
            "--output", str(tmp_path / "out")]
    args += ["--fractions", fractions] if fractions else []
    args += ["--shots", shots] if shots else []
    assert main(args) == 2
    assert message in error_line(capsys.readouterr().err)


def test_default_sizes():
    assert size_plan(None, None) == [("fraction", 0.1), ("fraction", 0.25),
                                     ("fraction", 0.5), ("fraction", 1.0)]


def test_a_share_metric_is_never_fitted_a_ceiling_above_one():
    sizes = [54, 54, 144, 144, 360, 360]  # three sizes of the example intents, two seeds
    accuracy = [0.590, 0.667, 0.778, 0.799, 0.917, 0.889]
    assert fit_power_law(sizes, accuracy)["a"] <= 1.0
    perplexity = [value * 10 for value in accuracy[::-1]]  # not a share: no such bound
    assert fit_power_law(sizes, perplexity, rising=False) is not None
