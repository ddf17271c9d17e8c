"""Pure metric functions over predictions (scikit-learn does the arithmetic)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           labels: Sequence[str]) -> dict:
    """Accuracy and macro / micro / weighted precision, recall and F1, plus per-intent rows."""
    ids = list(range(len(labels)))
    result: dict = {"accuracy": float(accuracy_score(y_true, y_pred)), "support": len(y_true)}
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=average,
                                                     zero_division=0)
        result.update({f"{average}_precision": float(p), f"{average}_recall": float(r),
                       f"{average}_f1": float(f)})
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None,
                                                 zero_division=0)
    result["per_intent"] = {
        labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                    "support": int(s[i])} for i in ids}
    return result


def confusion(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    return confusion_matrix(y_true, y_pred, labels=list(range(num_labels)))


def top_confused_pairs(matrix: np.ndarray, labels: Sequence[str], k: int = 15) -> list[dict]:
    """The off-diagonal cells with the most errors: which intent is mistaken for which."""
    cells = [(int(matrix[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels))
             if i != j and matrix[i, j] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"true": labels[i], "predicted": labels[j], "count": n,
             "share_of_true": n / max(1, int(matrix[i].sum()))} for n, i, j in cells[:k]]


def perplexity(total_nll: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per token); inf for no tokens."""
    return math.exp(total_nll / tokens) if tokens else float("inf")
