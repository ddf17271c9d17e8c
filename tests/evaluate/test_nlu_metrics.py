"""Slot metrics: hand-computed cases, error kinds, and agreement with seqeval on
word-aligned data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogtune.data.records import NluExample, Span
from dialogtune.evaluate.slots import (frame_errors, per_slot, sentence_accuracy, slot_f1,
                                       slot_precision, slot_recall, slot_report,
                                       top_slot_errors)

TEXT = "fly from new york to paris on monday"  # new york 9:17, paris 21:26, monday 30:36


def frame(intent, *spans, text=TEXT):
    return NluExample(text, intent, tuple(Span(*s) for s in spans))


GOLD = [frame("book", ("from", 9, 17), ("to", 21, 26), ("day", 30, 36)),
        frame("book", ("to", 21, 26))]
PRED = [frame("book", ("from", 9, 17), ("from", 21, 26), ("day", 30, 33)),  # 1 of 3 right
        frame("book", ("to", 21, 26), ("day", 30, 36))]                     # 1 + spurious


def test_micro_scores_by_hand():
    # 2 right of 5 predicted, of 4 gold: P 0.4, R 0.5, F1 = 2*.4*.5/.9
    assert slot_precision(GOLD, PRED) == pytest.approx(0.4)
    assert slot_recall(GOLD, PRED) == pytest.approx(0.5)
    assert slot_f1(GOLD, PRED) == pytest.approx(0.4 / 0.9)


def test_sentence_accuracy_needs_intent_and_every_slot():
    assert sentence_accuracy(GOLD, PRED) == 0.0
    assert sentence_accuracy(GOLD, GOLD) == 1.0
    wrong_intent = [frame("cancel", *[(s.slot, s.start, s.end) for s in g.slots]) for g in GOLD]
    assert sentence_accuracy(GOLD, [GOLD[0], wrong_intent[1]]) == 0.5


def test_per_slot_rows():
    rows = {r["slot"]: r for r in per_slot(GOLD, PRED)}
    assert rows["from"] == {"slot": "from", "precision": 0.5, "recall": 1.0,
                            "f1": pytest.approx(2 / 3), "support": 1}
    assert rows["to"]["precision"] == 1.0 and rows["to"]["recall"] == 0.5
    assert rows["day"] == {"slot": "day", "precision": 0.0, "recall": 0.0, "f1": 0.0,
                           "support": 1}


def test_error_kinds():
    kinds = [(e["kind"], e["gold"] and e["gold"]["value"],
              e["predicted"] and e["predicted"]["value"])
             for e in frame_errors(TEXT, GOLD[0], PRED[0])]
    assert kinds == [("wrong_label", "paris", "paris"), ("wrong_boundary", "monday", "mon")]
    missed = frame_errors(TEXT, GOLD[0], frame("book"))
    assert [e["kind"] for e in missed] == ["missed"] * 3
    assert [e["kind"] for e in frame_errors(TEXT, GOLD[1], PRED[1])] == ["spurious"]


def test_top_errors_group_count_and_keep_three_examples():
    gold = [GOLD[1]] * 5 + [GOLD[0]]
    pred = [PRED[1]] * 5 + [PRED[0]]
    top = top_slot_errors(gold, pred)
    assert (top[0]["kind"], top[0]["predicted_slot"], top[0]["count"]) == ("spurious", "day", 5)
    assert len(top[0]["examples"]) == 3
    assert {t["kind"] for t in top[1:]} == {"wrong_label", "wrong_boundary"}
    report = slot_report(gold, pred)
    assert {"slot_f1", "slot_precision", "slot_recall", "sentence_accuracy", "per_slot",
            "slot_errors"} <= set(report)


WORDS = st.lists(st.tuples(st.sampled_from(["a", "bb", "ccc"]),
                           st.sampled_from(["O", "B-x", "I-x", "B-y", "I-y"]),
                           st.sampled_from(["O", "B-x", "I-x", "B-y", "I-y"])),
                 min_size=1, max_size=10)


def spans_of(words, tags):
    """Char spans of a word-level BIO sequence (I- continuing only its own slot)."""
    from dialogtune.data.formats.conll import bio_spans

    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    return tuple(bio_spans(tags, starts, [len(w) for w in words], repair=True))


def tags_of(spans, words):
    """Word BIO of char spans (the valid form seqeval reads without repairs)."""
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    tags = ["O"] * len(words)
    for s in spans:
        inside = [i for i, st_ in enumerate(starts) if s.start <= st_ < s.end]
        tags[inside[0]] = f"B-{s.slot}"
        for i in inside[1:]:
            tags[i] = f"I-{s.slot}"
    return tags


@settings(max_examples=80, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=5))
def test_agrees_with_seqeval_on_word_aligned_data(sentences):
    from seqeval.metrics import f1_score, precision_score, recall_score

    gold, pred, gold_tags, pred_tags = [], [], [], []
    for rows in sentences:
        words = [w for w, _, _ in rows]
        text = " ".join(words)
        g = NluExample(text, "i", spans_of(words, [t for _, t, _ in rows]))
        p = NluExample(text, "i", spans_of(words, [t for _, _, t in rows]))
        gold.append(g), pred.append(p)
        gold_tags.append(tags_of(g.slots, words)), pred_tags.append(tags_of(p.slots, words))
    for ours, theirs in ((slot_f1, f1_score), (slot_precision, precision_score),
                         (slot_recall, recall_score)):
        assert ours(gold, pred) == pytest.approx(theirs(gold_tags, pred_tags, zero_division=0))
