"""Slow tests on the embedded real encoder (all-MiniLM-L6-v2) and the project's example data."""

from __future__ import annotations

import json

import pytest

from dialogtune.inference.intent import load_classifier


@pytest.mark.slow
def test_minilm_learns_the_example_domain(tmp_path, capsys):
    """The demo's understanding part (the default NLU recipe) must separate 18 support
    intents and find their slots."""
    from dialogtune.demo import run_nlu_demo

    metrics = run_nlu_demo(tmp_path)
    run = tmp_path / "nlu"
    summary = json.loads((run / "run.json").read_text())
    assert summary["labels"] == 18 and summary["trainable_parameters"] > 20_000_000
    # A random or broken model scores ~0.06 here; the default recipe reaches ~0.9.
    assert metrics["accuracy"] > 0.75, metrics["accuracy"]
    assert metrics["slot_f1"] > 0.5, metrics["slot_f1"]  # broken slot decoding gives ~0
    top = load_classifier(run).classify(["someone stole my phone"], top_k=1)[0]
    assert top["intents"][0]["intent"] == "lost_or_stolen_phone"
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and f"{metrics['accuracy']:.4f}" in printed
    assert f"{metrics['slot_f1']:.4f}" in printed and "test turn: " in printed
    found = load_classifier(run).classify(["what's the balance on account LM-30517742?"])[0]
    for slot in found["slots"]:  # the printed slots are the predictor's
        assert f"slot {slot['slot']} = {slot['value']!r}" in printed
    assert "of the in-scope test utterances" in printed and "predict: " in printed
    assert (run / "eval" / "confusion_matrix.png").is_file()
