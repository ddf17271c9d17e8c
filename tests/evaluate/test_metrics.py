"""Intent metrics: hand-computed values, sklearn agreement, confusions, plots, OOS threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogtune.data.encode.intent import LabelMap
from dialogtune.data.records import Utterance
from dialogtune.evaluate.intent import (calibrate_oos_threshold, out_of_scope_report,
                                       rejection_threshold, score_probabilities)
from dialogtune.evaluate.metrics import (classification_metrics, confusion, out_of_scope_metrics,
                                        top_confused_pairs)
from dialogtune.evaluate.plots import plot_confusion_matrix

LABELS = ["a", "b", "c"]
# true a a a b b c / predicted a a b b c c
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_hand_computed_example():
    # per class (TP, FP, FN): a (2,0,1), b (1,1,1), c (1,1,0)
    # a: P 1, R 2/3, F1 0.8 | b: P 1/2, R 1/2, F1 1/2 | c: P 1/2, R 1, F1 2/3
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["support"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)  # 13/18
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)  # 59/90
    for name in ("micro_precision", "micro_recall", "micro_f1"):  # single-label: = accuracy
        assert m[name] == pytest.approx(4 / 6)
    # weighted by support 3, 2, 1
    assert m["weighted_precision"] == pytest.approx((3 * 1 + 2 * 0.5 + 1 * 0.5) / 6)  # 0.75
    assert m["weighted_recall"] == pytest.approx((3 * 2 / 3 + 2 * 0.5 + 1 * 1) / 6)  # 2/3
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)  # 61/90
    assert m["per_intent"] == {
        "a": {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
              "support": 3},
        "b": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "c": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
    }


def test_perfect_and_all_wrong():
    perfect = classification_metrics([0, 1, 2], [0, 1, 2], LABELS)
    assert perfect["accuracy"] == perfect["macro_f1"] == perfect["weighted_f1"] == 1.0
    wrong = classification_metrics([0, 1, 2], [1, 2, 0], LABELS)
    assert wrong["accuracy"] == wrong["macro_f1"] == wrong["micro_f1"] == 0.0


def test_unknown_true_labels_count_as_errors():
    m = classification_metrics([0, -1, 1], [0, 0, 1], ["a", "b"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_intent"]["a"]["precision"] == 0.5  # the unknown one predicted as 'a'
    assert m["per_intent"]["a"]["recall"] == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_agrees_with_sklearn(pairs):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    labels = list("vwxyz")
    m = classification_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("macro", "micro", "weighted"):
        # the intents present in either list, as sklearn does without ``labels=``
        kwargs = {"labels": sorted(set(y_true) | set(y_pred)), "average": average,
                  "zero_division": 0}
        assert m[f"{average}_precision"] == pytest.approx(precision_score(y_true, y_pred, **kwargs))
        assert m[f"{average}_recall"] == pytest.approx(recall_score(y_true, y_pred, **kwargs))
        assert m[f"{average}_f1"] == pytest.approx(f1_score(y_true, y_pred, **kwargs))
    assert sum(row["support"] for row in m["per_intent"].values()) == len(pairs)


def test_macro_average_ignores_intents_absent_from_data_and_predictions():
    m = classification_metrics([0, 1], [0, 1], ["a", "b", "never_seen"])
    assert m["macro_f1"] == 1.0
    assert m["per_intent"]["never_seen"]["support"] == 0


def test_confusion_and_top_confused_pairs():
    matrix = confusion([0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 1, 1, 2, 2, 0, 1, 1, 2], 3)
    assert matrix.tolist() == [[1, 2, 0], [0, 0, 2], [1, 2, 1]]
    pairs = top_confused_pairs(matrix, LABELS)
    # count descending, ties by (true, predicted) index; the diagonal and zeros left out
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("a", "b", 2), ("b", "c", 2), ("c", "b", 2), ("c", "a", 1)]
    assert pairs[0]["share_of_true"] == pytest.approx(2 / 3)
    assert pairs[1]["share_of_true"] == pytest.approx(1.0)
    assert pairs[3]["share_of_true"] == pytest.approx(1 / 4)
    assert [p["count"] for p in top_confused_pairs(matrix, LABELS, k=2)] == [2, 2]
    assert top_confused_pairs(np.eye(3, dtype=int), LABELS) == []


def test_score_probabilities_counts_unknown_labels():
    labels = LabelMap(["a", "b"])
    records = [Utterance("x", "a"), Utterance("y", "b"), Utterance("z", "new")]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    m = score_probabilities(probs, records, labels)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["unknown_label_examples"] == 1


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_confusion_matrix_77_classes(tmp_path):
    rng = np.random.default_rng(0)
    n = 77
    labels = [f"intent_with_a_long_name_{i:02d}" for i in range(n)]
    matrix = rng.integers(0, 3, size=(n, n)) + np.diag(rng.integers(5, 20, size=n))
    matrix[5] = 0  # an intent absent from the test set must not divide by zero
    out = plot_confusion_matrix(matrix, labels, tmp_path / "cm.png")
    assert out == tmp_path / "cm.png" and is_png(out)
    from PIL import Image

    width, height = Image.open(out).size
    assert width >= 0.22 * n * 100 and height >= 0.22 * n * 100  # scaled up for 77 labels


def test_plot_confusion_matrix_small_annotated(tmp_path):
    out = plot_confusion_matrix(np.array([[3, 1], [0, 2]]), ["yes", "no"], tmp_path / "s.png")
    assert is_png(out)


def records_for(names: list[str]) -> list[Utterance]:
    return [Utterance(f"t{i}", name) for i, name in enumerate(names)]


def test_calibrate_oos_threshold_hand_case():
    labels = LabelMap(["a", "b"])
    # correct predictions have top probabilities .5 .6 .7 .8 .9; one wrong (.99) and one
    # unknown-label row are ignored
    probs = np.array([[0.5, 0.5], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9],
                      [0.99, 0.01], [0.95, 0.05]])
    names = ["a", "a", "b", "a", "b", "b", "zzz"]
    records = records_for(names)
    # 20th percentile of [.5 .6 .7 .8 .9] with linear interpolation: .5 + 0.8 * .1 = .58
    assert calibrate_oos_threshold(probs, records, labels, recall=0.8) == pytest.approx(0.58)
    assert calibrate_oos_threshold(probs, records, labels, recall=1.0) == pytest.approx(0.5)
    assert calibrate_oos_threshold(probs[5:], records[5:], labels) == 0.0  # nothing correct


def test_rejection_threshold_flags_the_share_of_in_scope_turns_right_or_wrong():
    labels = LabelMap(["a", "b"])
    tops = np.linspace(0.51, 0.99, 20)  # 20 in-scope turns, half of them predicted wrong
    probs = np.stack([tops, 1 - tops], axis=1)
    records = records_for(["a", "b"] * 10 + ["zzz"])
    probs = np.vstack([probs, [[0.5, 0.5]]])  # the unknown-label turn is not counted
    threshold = rejection_threshold(probs, records, labels, 0.1)
    assert threshold == pytest.approx(tops[1])  # 2 of 20 turns: the lowest and the next
    assert np.mean(tops < threshold) == pytest.approx(0.05)  # strictly below: at most 10 %
    assert rejection_threshold(probs[20:], records[20:], labels) == 0.0  # no in-scope turn


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.34, 1.0), min_size=1, max_size=50), st.floats(0.5, 1.0))
def test_calibrated_threshold_keeps_the_recall(tops, recall):
    labels = LabelMap(["a", "b", "c"])
    probs = np.array([[p, (1 - p) / 2, (1 - p) / 2] for p in tops])
    records = records_for(["a"] * len(tops))
    threshold = calibrate_oos_threshold(probs, records, labels, recall)
    kept = np.mean(probs.max(axis=1) >= threshold)
    assert kept >= recall - 1 / len(tops) - 1e-9
    assert min(tops) <= threshold + 1e-12 and threshold <= max(tops) + 1e-12


def test_out_of_scope_metrics_hand_case():
    # 4 in scope (3 right), 3 out of scope; flag below 0.5
    confidence = [0.9, 0.7, 0.4, 0.8, 0.3, 0.6, 0.2]
    is_oos = [False, False, False, False, True, True, True]
    correct = [True, True, True, False, False, False, False]
    got = out_of_scope_metrics(confidence, is_oos, correct, 0.5)
    # flagged: 0.4 (in scope), 0.3, 0.2 (out of scope) -> 2 of 3 caught, 2 of 3 flags right
    assert got["recall"] == pytest.approx(2 / 3) and got["precision"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)
    assert got["in_scope_rejected"] == pytest.approx(1 / 4)
    assert got["in_scope_accuracy"] == pytest.approx(2 / 4)  # 0.9, 0.7 right and kept
    # AUROC: of 12 (oos, in-scope) pairs, the oos turn is less confident in 11 (not 0.6 > 0.4)
    assert got["auroc"] == pytest.approx(11 / 12)
    assert (got["examples"], got["in_scope_examples"]) == (3, 4)
    # the F1-best cut flags exactly {0.2, 0.3, 0.4, 0.6}: recall 1, precision 3/4
    best = out_of_scope_metrics(confidence, is_oos, correct, got["best_f1_threshold"])
    assert best["f1"] == pytest.approx(got["best_f1"]) == pytest.approx(6 / 7)


def test_out_of_scope_recall_at_a_fixed_in_scope_rejection():
    in_scope = [i / 100 for i in range(1, 101)]  # the 5 % cut is 0.05: 4 turns lie below it
    oos = [0.02, 0.04, 0.05, 0.5]
    got = out_of_scope_metrics(in_scope + oos, [False] * 100 + [True] * 4,
                               [True] * 100 + [False] * 4, None)
    assert got["recall_at_5pct_in_scope_rejection"] == 0.5  # 0.02 and 0.04; 0.05 is kept
    flagged_in_scope = sum(c < 0.05 for c in in_scope) / len(in_scope)
    assert flagged_in_scope <= 0.05


def test_out_of_scope_metrics_without_labels_or_threshold():
    only_in = out_of_scope_metrics([0.9, 0.4], [False, False], [True, True], 0.5)
    assert only_in["in_scope_rejected"] == 0.5 and "recall" not in only_in
    assert "auroc" not in only_in
    no_threshold = out_of_scope_metrics([0.9, 0.4], [False, True], [True, False], None)
    assert no_threshold["auroc"] == 1.0 and "recall" not in no_threshold


def test_out_of_scope_report_treats_unseen_labels_as_out_of_scope():
    labels = LabelMap(["a", "b"])
    records = [Utterance("x", "a", 1), Utterance("y", "b", 2), Utterance("z", "weather", 3)]
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.55, 0.45]])
    report = out_of_scope_report(probs, records, labels, 0.6)
    assert report["examples"] == 1 and report["recall"] == 1.0 and report["precision"] == 1.0
    assert report["in_scope_accuracy"] == 1.0


def test_the_run_threshold_follows_the_configured_rule():
    from dialogtune.config import TrainConfig
    from dialogtune.errors import ConfigError
    from dialogtune.evaluate.intent import calibrated_threshold

    labels = LabelMap(["a", "b"])
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, 1.0, 40)
    probs = np.stack([top, 1 - top], axis=1)
    records = [Utterance(f"t{i}", "a" if i % 4 else "b") for i in range(40)]  # 10 wrong
    assert TrainConfig().oos_rule == "reject-in-scope"
    default = calibrated_threshold(probs, records, labels)
    assert (top < default).mean() <= 0.05 <= (top <= default).mean()
    assert default == rejection_threshold(probs, records, labels, 0.05)
    kept = calibrated_threshold(probs, records, labels, "keep-correct")
    assert kept == calibrate_oos_threshold(probs, records, labels, 0.95)
    assert calibrated_threshold(probs, records, labels, "reject-in-scope", 0.2) == \
        rejection_threshold(probs, records, labels, 0.2)
    with pytest.raises((ConfigError, ValueError)):
        TrainConfig(oos_share=1.5)
