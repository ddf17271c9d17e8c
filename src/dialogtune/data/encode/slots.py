"""Slot spans ↔ subword BIO labels, through the fast tokenizer's character offsets.

Labels are given per *unit*, not per token. A unit starts at a token that begins a new
pre-tokenizer word, or whose first character does not continue a run of letters/digits
of the token before ("$1,630" is the units $ / 1 / , / 630 for any tokenizer; each
Chinese or Japanese character starts one, ``script.one_word``). The
readers refuse spans that cut such a run (``formats.nlu_spans``), so every span is a run
of whole units, whatever the tokenizer, and decoding gives back exactly its characters.

Training labels the first token of each unit (B-x / I-x / O) and ignores the others
(-100), the JointBERT / Hugging Face token-classification convention: the loss counts
each word once, however many pieces the tokenizer cut it into. ``all_subwords=True``
labels every token of a span instead (B on its first token, I on the rest); decoding
reads unit-first tokens in both cases. Offsets are into the original text (the
tokenizer's normalizer may lowercase or strip accents; its offsets still point at the
original characters), trimmed of whitespace, which byte-level BPE includes in a token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...atomic import write_text_atomic
from ..formats.conll import bio_spans
from ..records import NluExample, Span
from ..script import one_word

IGNORE = -100


class SlotLabelMap:
    """O, then B-x and I-x for each slot name in sorted order: O=0, B-x=2k+1, I-x=2k+2."""

    def __init__(self, slots: list[str]):
        self.slots = sorted(set(slots))
        self.labels = ["O"] + [f"{p}-{s}" for s in self.slots for p in ("B", "I")]
        self.index = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_examples(cls, examples: list[NluExample]) -> "SlotLabelMap":
        return cls([s.slot for e in examples for s in e.slots])

    def __len__(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict:
        return {"slots": self.slots, "labels": self.labels}

    @classmethod
    def from_json(cls, data: dict) -> "SlotLabelMap":
        return cls(data["slots"])

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_json(), indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> "SlotLabelMap":
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Alignment:
    """Where each token of one encoded text sits in the text: ``offsets`` (whitespace
    trimmed; None for special, context and whitespace-only tokens) and ``unit_starts``
    (indices of the tokens that begin a unit, in order)."""

    offsets: list[tuple[int, int] | None]
    unit_starts: list[int]

    def unit_spans(self) -> list[tuple[int, int]]:
        """(start, end) characters of each unit: its first token to its last."""
        ends, bounds = [], self.unit_starts + [len(self.offsets)]
        for first, after in zip(bounds, bounds[1:]):
            ends.append(max(o[1] for o in self.offsets[first:after] if o is not None))
        return [(self.offsets[i][0], end) for i, end in zip(self.unit_starts, ends)]


def align(text: str, offsets: list[tuple[int, int]], word_ids: list[int | None],
          in_text: list[bool]) -> Alignment:
    """The Alignment of one encoding; ``in_text`` marks the tokens of ``text`` (not
    special tokens, not the context of a pair)."""
    trimmed, starts, previous = [], [], None
    for i, (start, end) in enumerate(offsets):
        if not in_text[i]:  # a context token's offsets point into the context
            trimmed.append(None)
            continue
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start >= end:
            trimmed.append(None)
            continue
        trimmed.append((start, end))
        if previous is None or _new_unit(text, trimmed[previous], start, word_ids, previous, i):
            starts.append(i)
        previous = i
    return Alignment(trimmed, starts)


def _new_unit(text: str, before: tuple[int, int], start: int, word_ids, prev: int,
              i: int) -> bool:
    if start < before[1]:  # pieces of one character (byte-level BPE of an emoji)
        return False
    if word_ids[i] != word_ids[prev] or start > before[1]:
        return True
    return not one_word(text[start - 1], text[start])


def encode_texts(tokenizer, texts: list[str], max_length: int,
                 contexts: list[str | None] | None = None) -> tuple[list[list[int]],
                                                                    list[Alignment]]:
    """Token ids and Alignments; a context goes second in a pair and is truncated first."""
    ids, alignments = [], []
    for i, text in enumerate(texts):
        context = contexts[i] if contexts else None
        enc = tokenizer(text, context, truncation="only_second" if context else True,
                        max_length=max_length, return_offsets_mapping=True)
        sequence = enc.sequence_ids() if hasattr(enc, "sequence_ids") else None
        in_text = [s == 0 for s in sequence] if sequence else [True] * len(enc["input_ids"])
        alignments.append(align(text, enc["offset_mapping"], enc.word_ids(), in_text))
        ids.append(enc["input_ids"])
    return ids, alignments


def spans_to_labels(spans: tuple[Span, ...], alignment: Alignment, labels: SlotLabelMap,
                    all_subwords: bool = False) -> list[int]:
    """Label ids per token: unit-first tokens B-x / I-x / O, the others -100 (or, with
    ``all_subwords``, every token of a span). A slot unknown to ``labels`` is O."""
    out = [IGNORE] * len(alignment.offsets)
    span_of_unit = _units_in_spans(spans, alignment)
    bounds = alignment.unit_starts + [len(alignment.offsets)]
    for u, (first, after) in enumerate(zip(bounds, bounds[1:])):
        span = span_of_unit[u]
        begins = span is not None and (u == 0 or span_of_unit[u - 1] is not span)
        for t in range(first, after if all_subwords else first + 1):
            if alignment.offsets[t] is None:
                continue
            name = "O" if span is None else f"{'B' if begins and t == first else 'I'}-{span.slot}"
            out[t] = labels.index.get(name, 0)
    return out


def _units_in_spans(spans, alignment: Alignment) -> list[Span | None]:
    """The span each unit overlaps (None: outside every span). A unit wider than its
    span (WordPiece turns "josé😀" into one [UNK]) is labelled with it: the model can only
    ever predict whole tokens, so that span comes back as the token's characters."""
    found = []
    for start, end in alignment.unit_spans():
        found.append(next((s for s in spans if s.start < end and start < s.end), None))
    return found


@dataclass(frozen=True)
class SlotPrediction:
    """A predicted slot: character offsets into the original text, its value, and the
    lowest probability among its units' labels (a span is as sure as its weakest part)."""

    slot: str
    start: int
    end: int
    value: str
    confidence: float

    def as_dict(self) -> dict:
        return {"slot": self.slot, "value": self.value, "start": self.start, "end": self.end,
                "confidence": round(self.confidence, 4)}


def decode_spans(text: str, probs: np.ndarray, alignment: Alignment, labels: SlotLabelMap,
                 constrained: bool = True, path: list[int] | None = None
                 ) -> list[SlotPrediction]:
    """Token label probabilities ``[tokens, labels]`` → slot spans on ``text``.
    ``path`` (one label per unit) is a path decoded already: a CRF's Viterbi. Without it,
    ``constrained`` decodes the best valid BIO path (``constrained_bio_path``); otherwise
    each unit takes its most likely label and a stray I-x starts a span (conlleval)."""
    if not alignment.unit_starts:
        return []
    unit_probs = probs[alignment.unit_starts]
    if path is None:
        path = constrained_bio_path(np.log(np.clip(unit_probs, 1e-12, 1.0)), labels) \
            if constrained else [int(i) for i in unit_probs.argmax(-1)]
    units = alignment.unit_spans()
    spans = bio_spans([labels.labels[i] for i in path], [s for s, _ in units],
                      [e - s for s, e in units], repair=True)
    chosen = unit_probs[np.arange(len(path)), path]
    out = []
    for span in spans:
        inside = [u for u, (s, e) in enumerate(units) if span.start <= s and e <= span.end]
        out.append(SlotPrediction(span.slot, span.start, span.end, text[span.start:span.end],
                                  float(chosen[inside].min())))
    return out


def bio_transitions(labels: SlotLabelMap) -> tuple[np.ndarray, np.ndarray]:
    """Which BIO labels may start a sequence ``[labels]`` and which may follow which
    ``[previous, next]``: I-x only after B-x or I-x, never first. Shared by the
    constrained decoding below and the CRF's clamped transitions (``models.slot_crf``)."""
    size = len(labels)
    inside = np.array([lab.startswith("I-") for lab in labels.labels])
    allowed = np.ones((size, size), dtype=bool)  # allowed[previous, next]
    for j, label in enumerate(labels.labels):
        if inside[j]:
            allowed[:, j] = False
            allowed[labels.index["B-" + label[2:]], j] = True
            allowed[j, j] = True
    return ~inside, allowed


def constrained_bio_path(log_probs: np.ndarray, labels: SlotLabelMap) -> list[int]:
    """The most likely label sequence (Viterbi) among valid BIO ones (``bio_transitions``).
    Pure and cheap ([units, labels]); no trained transitions."""
    first, allowed = bio_transitions(labels)
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(first, log_probs[0], -np.inf)
    back = []
    for row in log_probs[1:]:
        total = score[:, None] + penalty
        back.append(total.argmax(0))
        score = total.max(0) + row
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]
