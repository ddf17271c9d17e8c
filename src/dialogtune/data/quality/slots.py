"""Slot findings of ``dialogtune data check`` for joint intent + slot (NLU) data.

The report's ``slots`` section (every key documented here, pure functions of the
examples read):

- ``span_problems``: spans the lenient reader refused, train and test file, each with
  ``file``, ``line``, ``field`` (``slots[1]``, ``messages[3].slots[0]``, ``entities[0]``,
  ``tag``) and ``message`` (out of bounds, empty or reversed, overlapping, cutting a word
  in half, a ``value`` that differs from the text at its offsets, a bad BIO tag). These
  are the same checks and words training uses (``formats.nlu_spans``), so a file with
  none here reads for training; the example holding one is not read (not counted below).
- ``counts``: spans per slot type in the training file, most frequent first, and
  ``values``: distinct values per slot type (case and spacing ignored).
- ``seen_once``: slot types with a single span in the training file (``slot``, ``line``,
  ``value``, ``text``): a model cannot learn a label from one example — a warning, and
  often a typo in the slot name.
- ``test_only``: slot types of the ``--test`` file that never occur in the training file
  (``slot``, ``count``, ``test_lines``): the model cannot predict them, so every one is a
  miss by construction — a label mismatch between the two files.
- ``unseen_values``: per slot type of the test file, how many of its spans hold a value
  never seen for that slot in training (``slot``, ``test_spans``, ``unseen``, ``rate``,
  ``examples``). Informative, not an error: a high rate measures generalisation to new
  values, a rate of 0 says the test set only asks for memorised values (slot leakage).
  The overall rate is ``unseen_value_rate``.

Text leakage (test utterances identical or near to training ones) is the report's
``leakage`` section, computed on NLU examples exactly as for intents.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ..formats.base import Loaded
from ..formats.nlu import is_span_problem
from ..records import NluExample
from .checks import normalize

EXAMPLE_VALUES = 5


def split_problems(loaded: Loaded | None) -> tuple[list[dict], list[dict]]:
    """(span problems, other malformed rows) of a lenient NLU read."""
    if loaded is None:
        return [], []
    spans = [m for m in loaded.malformed if is_span_problem(m["field"])]
    rest = [m for m in loaded.malformed if not is_span_problem(m["field"])]
    return spans, rest


def _value_key(value: str) -> str:
    return normalize(value) or value


def slot_counts(examples: list[NluExample]) -> dict[str, int]:
    counts = Counter(span.slot for e in examples for span in e.slots)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def slot_values(examples: list[NluExample]) -> dict[str, set[str]]:
    values: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        for span in e.slots:
            values[span.slot].add(_value_key(e.value(span)))
    return values


def seen_once(examples: list[NluExample]) -> list[dict]:
    counts = slot_counts(examples)
    found = []
    for e in examples:
        for span in e.slots:
            if counts[span.slot] == 1:
                found.append({"slot": span.slot, "line": e.line, "value": e.value(span),
                              "text": e.text})
    return sorted(found, key=lambda f: f["slot"])


def test_only(train: list[NluExample], test: list[NluExample]) -> list[dict]:
    known = set(slot_counts(train))
    lines: dict[str, list] = defaultdict(list)
    for e in test:
        for span in e.slots:
            if span.slot not in known:
                lines[span.slot].append(e.line)
    return [{"slot": slot, "count": len(found), "test_lines": found}
            for slot, found in sorted(lines.items())]


def unseen_values(train: list[NluExample], test: list[NluExample]) -> list[dict]:
    known = slot_values(train)
    rows: dict[str, dict] = {}
    for e in test:
        for span in e.slots:
            row = rows.setdefault(span.slot, {"slot": span.slot, "test_spans": 0, "unseen": 0,
                                              "rate": 0.0, "examples": []})
            row["test_spans"] += 1
            value = e.value(span)
            if _value_key(value) not in known.get(span.slot, set()):
                row["unseen"] += 1
                if value not in row["examples"] and len(row["examples"]) < EXAMPLE_VALUES:
                    row["examples"].append(value)
    for row in rows.values():
        row["rate"] = round(row["unseen"] / row["test_spans"], 3)
    return sorted(rows.values(), key=lambda r: (-r["rate"], r["slot"]))


def slot_findings(loaded: Loaded, held: Loaded | None) -> dict:
    """The report's ``slots`` section (see the module doc)."""
    train, test = loaded.examples, held.examples if held else []
    span_problems = split_problems(loaded)[0] + split_problems(held)[0]
    unseen = unseen_values(train, test) if held else []
    spans = sum(r["test_spans"] for r in unseen)
    return {
        "span_problems": span_problems,
        "counts": slot_counts(train),
        "values": {slot: len(v) for slot, v in sorted(slot_values(train).items())},
        "spans": sum(len(e.slots) for e in train),
        "examples_with_slots": sum(1 for e in train if e.slots),
        "seen_once": seen_once(train),
        "test_only": test_only(train, test) if held else [],
        "unseen_values": unseen,
        "unseen_value_rate": round(sum(r["unseen"] for r in unseen) / spans, 3)
        if spans else None,
    }
