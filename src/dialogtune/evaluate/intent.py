"""Run an intent model over labelled utterances → metrics dict, confusion matrix and plots."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..checkpoint import write_json_atomic
from ..data.encode.intent import LabelMap
from ..data.records import Utterance
from ..runs.layout import EvalDir
from .metrics import (classification_metrics, confusion, out_of_scope_metrics,
                      top_confused_pairs)
from .plots import plot_confusion_matrix

SINGLE_LATENCY_SAMPLES = 50


def score_probabilities(probs: np.ndarray, records: list[Utterance], labels: LabelMap) -> dict:
    """Metrics for predicted probabilities; utterances with unseen labels count as errors."""
    y_true = [labels.index.get(r.label, -1) for r in records]
    y_pred = probs.argmax(axis=1).tolist()
    metrics = classification_metrics(y_true, y_pred, labels.labels)
    metrics["unknown_label_examples"] = sum(1 for y in y_true if y < 0)
    return metrics


def evaluate_intent(predictor, records: list[Utterance], out_dir: Path | None = None,
                    oos_threshold: float | None = None) -> dict:
    """Full evaluation report for a trained run; writes the confusion matrix JSON + PNG.

    Test utterances whose label is none of the run's intents are out of scope: they count
    as errors in ``accuracy`` and are what ``out_of_scope`` measures detection on, at the
    run's calibrated threshold unless ``oos_threshold`` is given.
    """
    texts = [r.text for r in records]
    # NLU examples may carry the turn they answer; intent utterances carry none
    contexts = [getattr(r, "context", None) for r in records]
    started = time.perf_counter()
    probs = predictor.probabilities(texts, contexts) if any(contexts) \
        else predictor.probabilities(texts)
    batch_seconds = time.perf_counter() - started
    labels = predictor.labels
    metrics = score_probabilities(probs, records, labels)
    metrics["out_of_scope"] = out_of_scope_report(
        probs, records, labels, predictor.oos_threshold if oos_threshold is None else oos_threshold)
    known = [(labels.index[r.label], int(p)) for r, p in zip(records, probs.argmax(1))
             if r.label in labels.index]
    matrix = confusion([t for t, _ in known], [p for _, p in known], len(labels))
    metrics["top_confused_pairs"] = top_confused_pairs(matrix, labels.labels)
    metrics["latency_ms_per_utterance"] = 1000 * batch_seconds / max(1, len(texts))
    metrics["single_utterance_latency_ms_p50"] = _single_latency(predictor, texts)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = EvalDir(out_dir)
        write_json_atomic({"labels": labels.labels, "matrix": matrix.tolist()},
                          files.confusion_json)
        plot_confusion_matrix(matrix, labels.labels, files.confusion_png)
        metrics["confusion_matrix_png"] = str(files.confusion_png)
    return metrics


def out_of_scope_report(probs: np.ndarray, records: list[Utterance], labels: LabelMap,
                        threshold: float | None) -> dict:
    """``out_of_scope_metrics`` for probabilities over labelled utterances (see there)."""
    truth = [labels.index.get(r.label, -1) for r in records]
    return out_of_scope_metrics(probs.max(axis=1), [t < 0 for t in truth],
                                [t == int(p) for t, p in zip(truth, probs.argmax(axis=1))],
                                threshold)


def _single_latency(predictor, texts: list[str]) -> float:
    """Median time to classify one utterance alone, as a live bot would."""
    samples = []
    for text in texts[:SINGLE_LATENCY_SAMPLES]:
        started = time.perf_counter()
        predictor.probabilities([text])
        samples.append(1000 * (time.perf_counter() - started))
    return float(np.median(samples)) if samples else 0.0


def calibrate_oos_threshold(probs: np.ndarray, records: list[Utterance],
                            labels: LabelMap, recall: float = 0.95) -> float:
    """Highest threshold that keeps ``recall`` of correct in-scope validation predictions.

    Below it a turn is flagged out of scope; without out-of-scope examples this is the
    standard way to pick it (it costs at most 1 - recall of the correct answers).
    """
    correct = [row.max() for row, r in zip(probs, records)
               if labels.index.get(r.label, -1) == int(row.argmax())]
    if not correct:
        return 0.0
    return float(np.quantile(np.array(correct), 1 - recall))


def rejection_threshold(probs: np.ndarray, records: list[Utterance], labels: LabelMap,
                        rejection: float = 0.05) -> float:
    """The threshold that flags ``rejection`` of the in-scope validation turns, right or
    wrong: the rule that targets how many in-scope users a deployed bot turns away.
    (Strictly below the cut is flagged, so at most that share of these turns is.)"""
    kept = [row.max() for row, r in zip(probs, records) if r.label in labels.index]
    if not kept:
        return 0.0
    return float(np.quantile(np.array(kept), rejection, method="inverted_cdf"))


OOS_RULES = {"keep-correct": (calibrate_oos_threshold, 0.95),
             "reject-in-scope": (rejection_threshold, 0.05)}


def calibrated_threshold(probs: np.ndarray, records: list[Utterance], labels: LabelMap,
                         rule: str = "reject-in-scope", share: float | None = None) -> float:
    """The out-of-scope threshold of ``rule`` (``OOS_RULES``) on labelled validation turns;
    ``share`` overrides the rule's default share."""
    calibrate, default = OOS_RULES[rule]
    return calibrate(probs, records, labels, default if share is None else share)
