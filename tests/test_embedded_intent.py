"""Slow tests on the embedded real encoder (all-MiniLM-L6-v2) and the project's example data."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogtune import Predictor, evaluate_run, load_config, train_run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_minilm_learns_the_example_domain(tmp_path):
    """Two epochs of the default recipe must separate 18 support intents on held-out data."""
    run = tmp_path / "run"
    cfg = load_config(None, ["train.epochs=2"], **{
        "task": "intent", "output": str(run), "data.train": str(EXAMPLES / "intents_train.csv")})
    summary = train_run(cfg)
    assert summary["labels"] == 18 and summary["trainable_parameters"] > 20_000_000
    metrics = evaluate_run(run, str(EXAMPLES / "intents_test.csv"), tmp_path / "m.json")
    # A random or broken model scores ~0.06 here; the default recipe reaches ~0.9.
    assert metrics["accuracy"] > 0.75, metrics["accuracy"]
    top = Predictor.from_run(run).classify(["someone stole my phone"], top_k=1)[0]
    assert top["intents"][0]["intent"] == "lost_or_stolen_phone"
