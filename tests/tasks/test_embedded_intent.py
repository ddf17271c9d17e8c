"""Slow tests on the embedded real encoder (all-MiniLM-L6-v2) and the project's example data."""

from __future__ import annotations

import json

import pytest

from dialogtune import Predictor


@pytest.mark.slow
def test_minilm_learns_the_example_domain(tmp_path, capsys):
    """The demo's intent part (the default recipe) must separate 18 support intents."""
    from dialogtune.demo import run_intent_demo

    metrics = run_intent_demo(tmp_path)
    run = tmp_path / "intent"
    summary = json.loads((run / "run.json").read_text())
    assert summary["labels"] == 18 and summary["trainable_parameters"] > 20_000_000
    # A random or broken model scores ~0.06 here; the default recipe reaches ~0.9.
    assert metrics["accuracy"] > 0.75, metrics["accuracy"]
    top = Predictor.from_run(run).classify(["someone stole my phone"], top_k=1)[0]
    assert top["intents"][0]["intent"] == "lost_or_stolen_phone"
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and f"{metrics['accuracy']:.4f}" in printed
    assert "of the in-scope test utterances" in printed and "predict: " in printed
    assert (run / "eval" / "confusion_matrix.png").is_file()
