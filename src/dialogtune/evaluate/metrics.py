"""Pure metric functions over predictions (scikit-learn does the arithmetic)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score)

from ..data.script import UNSPACED, corpus_script


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           labels: Sequence[str]) -> dict:
    """Accuracy and macro / micro / weighted precision, recall and F1, plus per-intent rows."""
    ids = list(range(len(labels)))
    # Averages cover the intents that occur in the data or the predictions (sklearn's own
    # default): an intent absent from a small test set would otherwise count as F1 = 0.
    present = sorted({y for y in (*y_true, *y_pred) if 0 <= y < len(labels)})
    result: dict = {"accuracy": float(accuracy_score(y_true, y_pred)), "support": len(y_true)}
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                     average=average, zero_division=0)
        result.update({f"{average}_precision": float(p), f"{average}_recall": float(r),
                       f"{average}_f1": float(f)})
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None,
                                                 zero_division=0)
    result["per_intent"] = {
        labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                    "support": int(s[i])} for i in ids}
    return result


def out_of_scope_metrics(confidence: Sequence[float], is_oos: Sequence[bool],
                         correct: Sequence[bool], threshold: float | None) -> dict:
    """Out-of-scope detection, where a turn is flagged when its top probability < threshold.

    ``is_oos``: the true label is none of the model's intents; ``correct``: the top intent
    is right. Reported as dialogue NLU papers do (CLINC150): out-of-scope recall, precision
    and F1, and in-scope accuracy counting a rejected in-scope turn as an error; plus the
    threshold-free AUROC and, given labelled out-of-scope turns, the F1-best threshold.
    """
    confidence = np.asarray(confidence, dtype=float)
    is_oos, correct = np.asarray(is_oos, dtype=bool), np.asarray(correct, dtype=bool)
    result: dict = {"threshold": threshold, "examples": int(is_oos.sum()),
                    "in_scope_examples": int((~is_oos).sum())}
    if threshold is not None:
        flagged = confidence < threshold
        result["in_scope_rejected"] = _mean(flagged[~is_oos])
        result["in_scope_accuracy"] = _mean((correct & ~flagged)[~is_oos])
        if is_oos.any():
            p, r, f, _ = precision_recall_fscore_support(is_oos, flagged, average="binary",
                                                         zero_division=0)
            result.update(precision=float(p), recall=float(r), f1=float(f))
    if is_oos.any() and (~is_oos).any():
        result["auroc"] = float(roc_auc_score(is_oos, -confidence))
        precision, recall, cuts = precision_recall_curve(is_oos, -confidence)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best = int(np.argmax(f1[:-1]))  # the last point has no threshold
        # flagged means -confidence >= cut, i.e. confidence <= -cut: the next float up
        result["best_f1_threshold"] = float(np.nextafter(-cuts[best], np.inf))
        result["best_f1"] = float(f1[best])
        result["recall_at_5pct_in_scope_rejection"] = recall_at_rejection(
            confidence, is_oos, FIXED_IN_SCOPE_REJECTION)
    return result


# The operating point reported beside AUROC: a bot that turns away 1 in-scope turn in 20.
FIXED_IN_SCOPE_REJECTION = 0.05


def recall_at_rejection(confidence: np.ndarray, is_oos: np.ndarray, rejection: float) -> float:
    """Out-of-scope recall at the cut that flags ``rejection`` of the in-scope turns (the
    cut is the in-scope confidences' ``rejection`` quantile; flagged = strictly below it)."""
    cut = np.quantile(confidence[~is_oos], rejection, method="inverted_cdf")
    return float((confidence[is_oos] < cut).mean())


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


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


# --- response generation (chat) -------------------------------------------------------------

# sacrebleu's tokenizer for the references' script (``script.corpus_script``): its own
# ``zh`` segmentation for Chinese (the reply pair in tests/evaluate/test_metrics_scripts.py
# scores 0.0 with 13a, 75.2 with zh: 13a sees each clause as one word), single characters for the other unspaced scripts (``ja-mecab`` needs MeCab).
BLEU_TOKENIZERS = {"spaced": "13a", "zh": "zh", "ja": "char", "other-unspaced": "char"}


def bleu_tokenizer(references: Sequence[str]) -> str:
    """The sacrebleu tokenizer that fits the references' script."""
    return BLEU_TOKENIZERS[corpus_script(references)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str],
                tokenize: str | None = None) -> float:
    """sacrebleu corpus BLEU (0-100) of generated replies against one reference each,
    tokenized by ``tokenize`` (default: ``bleu_tokenizer(references)``)."""
    import sacrebleu

    if not hypotheses:
        return 0.0
    tokenize = tokenize or bleu_tokenizer(references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)],
                                       tokenize=tokenize).score)


_SPACED_PIECE = re.compile(r"[\w$%.,:/-]*\w")


def _words(text: str) -> list[str]:
    """Lower-cased tokens for ROUGE: words and numbers, and each character of Chinese or
    Japanese on its own (a Chinese clause has no spaces to split on); punctuation is not
    content."""
    return _SPACED_PIECE.findall(UNSPACED.sub(r" \g<0> ", text.lower()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row kept)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        previous = 0
        for j, y in enumerate(b, start=1):
            current = row[j]
            row[j] = previous + 1 if x == y else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """ROUGE-L F1 of one pair: LCS of word tokens (characters for Chinese and Japanese),
    harmonic mean of precision and recall."""
    hyp, ref = _words(hypothesis), _words(reference)
    if not hyp or not ref:
        return float(hyp == ref)
    lcs = lcs_length(hyp, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def mean_rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean per-reply ROUGE-L F1 (0-1)."""
    scores = [rouge_l(h, r) for h, r in zip(hypotheses, references)]
    return sum(scores) / len(scores) if scores else 0.0


def slot_value_recall(hypotheses: Sequence[str], references: Sequence[str],
                      slot_values: Sequence[Sequence[str]]) -> tuple[float | None, int]:
    """Share of the user's slot values a good reply repeats that the generated reply repeats.

    For reply i, ``slot_values[i]`` are the ``value`` strings of the slots in the user turns
    before it. Only values that the reference reply contains count (case-insensitive
    substring match): those are the ones the reply should carry, e.g. "Amir" in "Sending
    $20 to Amir". The metric is micro-averaged: (values also in the generated reply) /
    (values in the reference), over all replies. Returns (recall or None when no reference
    mentions a value, number of values counted).
    """
    wanted = found = 0
    for hypothesis, reference, values in zip(hypotheses, references, slot_values):
        hyp, ref = hypothesis.lower(), reference.lower()
        for value in dict.fromkeys(v.strip().lower() for v in values if v and v.strip()):
            if value in ref:
                wanted += 1
                found += value in hyp
    return (found / wanted if wanted else None), wanted
