"""Slot metrics: exact span + label, micro averaged, as CoNLL / seqeval score them.

Scored on character spans directly: a predicted slot counts only when its label, start
and end all equal a gold slot's. On word-aligned data this is exactly seqeval's default
(conlleval) micro F1 over word-level BIO (tests/evaluate/test_nlu_metrics.py checks it against
seqeval); unlike a conversion to whitespace words it cannot call "$1,630." right for a
gold "$1,630". Inputs are sequences of frames: anything with ``intent`` and ``slots``
(spans with ``slot``, ``start``, ``end``) — gold NluExamples and predictions alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

ERROR_KINDS = ("missed", "spurious", "wrong_label", "wrong_boundary")


def _keys(frame) -> set[tuple[str, int, int]]:
    return {(s.slot, s.start, s.end) for s in frame.slots}


def _counts(gold: Sequence, pred: Sequence) -> tuple[Counter, Counter, Counter]:
    """Per slot: true positives, gold spans, predicted spans."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold frames but {len(pred)} predictions")
    hits, gold_n, pred_n = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gk, pk = _keys(g), _keys(p)
        hits.update(k[0] for k in gk & pk)
        gold_n.update(k[0] for k in gk)
        pred_n.update(k[0] for k in pk)
    return hits, gold_n, pred_n


def _prf(hits: int, gold: int, pred: int) -> tuple[float, float, float]:
    """Precision, recall, F1; 0 where undefined (seqeval's zero_division=0)."""
    precision = hits / pred if pred else 0.0
    recall = hits / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def slot_scores(gold: Sequence, pred: Sequence) -> dict[str, float]:
    """``slot_precision``, ``slot_recall``, ``slot_f1`` (micro over every slot)."""
    hits, gold_n, pred_n = _counts(gold, pred)
    p, r, f = _prf(sum(hits.values()), sum(gold_n.values()), sum(pred_n.values()))
    return {"slot_precision": p, "slot_recall": r, "slot_f1": f}


def slot_f1(gold: Sequence, pred: Sequence) -> float:
    return slot_scores(gold, pred)["slot_f1"]


def slot_precision(gold: Sequence, pred: Sequence) -> float:
    return slot_scores(gold, pred)["slot_precision"]


def slot_recall(gold: Sequence, pred: Sequence) -> float:
    return slot_scores(gold, pred)["slot_recall"]


def sentence_accuracy(gold: Sequence, pred: Sequence) -> float:
    """Share of utterances whose intent and every slot are right (semantic frame
    accuracy): same intent, and the same set of (slot, start, end)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold frames but {len(pred)} predictions")
    right = sum(g.intent == p.intent and _keys(g) == _keys(p) for g, p in zip(gold, pred))
    return right / len(gold) if gold else 0.0


def per_slot(gold: Sequence, pred: Sequence) -> list[dict[str, Any]]:
    """One row per slot seen in gold or predictions: precision, recall, f1, support."""
    hits, gold_n, pred_n = _counts(gold, pred)
    rows = []
    for slot in sorted(set(gold_n) | set(pred_n)):
        p, r, f = _prf(hits[slot], gold_n[slot], pred_n[slot])
        rows.append({"slot": slot, "precision": p, "recall": r, "f1": f,
                     "support": gold_n[slot]})
    return rows


def frame_errors(text: str, gold_frame, pred_frame) -> list[dict[str, Any]]:
    """The slot errors of one utterance. Unmatched gold and predicted spans that overlap
    pair up: same label → ``wrong_boundary``, else ``wrong_label`` (whatever the
    boundaries); an unpaired gold span is ``missed``, an unpaired prediction ``spurious``."""
    gold = sorted(_keys(gold_frame) - _keys(pred_frame), key=lambda k: k[1])
    pred = sorted(_keys(pred_frame) - _keys(gold_frame), key=lambda k: k[1])
    errors, used = [], set()
    for g in gold:
        match = next((p for p in pred if p not in used and p[1] < g[2] and g[1] < p[2]), None)
        if match is None:
            errors.append(_error("missed", text, g, None))
            continue
        used.add(match)
        kind = "wrong_boundary" if match[0] == g[0] else "wrong_label"
        errors.append(_error(kind, text, g, match))
    errors += [_error("spurious", text, None, p) for p in pred if p not in used]
    return errors


def _error(kind: str, text: str, gold, pred) -> dict[str, Any]:
    def side(key):
        return None if key is None else {"slot": key[0], "value": text[key[1]:key[2]],
                                         "start": key[1], "end": key[2]}
    return {"kind": kind, "text": text, "gold": side(gold), "predicted": side(pred)}


def top_slot_errors(gold: Sequence, pred: Sequence, limit: int = 10,
                    examples: int = 3) -> list[dict[str, Any]]:
    """The most frequent errors, grouped by (kind, gold slot, predicted slot), each with
    its count and up to ``examples`` examples; most frequent first."""
    groups: dict[tuple, list] = defaultdict(list)
    for g, p in zip(gold, pred):
        for error in frame_errors(g.text, g, p):
            key = (error["kind"], (error["gold"] or {}).get("slot"),
                   (error["predicted"] or {}).get("slot"))
            groups[key].append(error)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), ERROR_KINDS.index(
        item[0][0]), str(item[0][1]), str(item[0][2])))
    return [{"kind": kind, "gold_slot": g_slot, "predicted_slot": p_slot,
             "count": len(found), "examples": [{k: e[k] for k in ("text", "gold", "predicted")}
                                               for e in found[:examples]]}
            for (kind, g_slot, p_slot), found in ranked[:limit]]


def slot_report(gold: Sequence, pred: Sequence) -> dict[str, Any]:
    """Every slot metric of an NLU evaluation, as ``eval`` writes them."""
    return {**slot_scores(gold, pred), "sentence_accuracy": sentence_accuracy(gold, pred),
            "per_slot": per_slot(gold, pred), "slot_errors": top_slot_errors(gold, pred)}
