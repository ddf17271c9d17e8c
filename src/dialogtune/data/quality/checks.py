"""The findings of ``dialogtune data check``: pure functions, records in → plain dicts out.

Every finding carries the file's own 1-based ``line`` (or ``lines`` for a group) and the
text involved, so a person can jump to it. Texts are compared after ``normalize`` (case,
spacing, punctuation), because "Where's my card?" and "where is my card" are the same
training signal twice. The same functions serve dialogues through ``Entry`` (a key to
compare, the text to show and a label), see ``dialogues``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from typing import NamedTuple

import numpy as np

from ..records import Utterance
from ..script import join_unspaced
from .near_dup import similar_texts
from .pii import find_pii

_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[^\w\s]+|_")
PERCENTILES = (50, 90, 95, 99)


class Entry(NamedTuple):
    """One comparable item: ``key`` is compared, ``text`` is shown, ``label`` is its class."""

    line: int | None
    key: str
    text: str
    label: str


def normalize(text: str) -> str:
    """Casefolded, punctuation removed, whitespace collapsed ("I'm OK!" → "im ok").

    NFKC maps full-width forms to ASCII ("，" → ","); punctuation of any script, CJK's
    "。、「」" included, becomes a space, and a space beside a Chinese or Japanese
    character is dropped, so "我的卡丢了，怎么办" and "我的卡丢了怎么办" meet.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return join_unspaced(" ".join(_NON_WORD.sub(" ", _APOSTROPHES.sub("", text)).split()))


def utterance_entries(records: list[Utterance]) -> list[Entry]:
    """Entries for the non-empty utterances (empty ones are the ``empty`` finding's)."""
    entries = []
    for r in records:
        key = normalize(r.text)
        if key:
            entries.append(Entry(r.line, key, r.text, r.label))
    return entries


def _by_key(entries: list[Entry]) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[entry.key].append(entry)
    return groups


def exact_duplicates(entries: list[Entry]) -> list[dict]:
    """Groups of 2+ entries with the same normalised text and the same label."""
    found = []
    for group in _by_key(entries).values():
        by_label: dict[str, list[Entry]] = defaultdict(list)
        for entry in group:
            by_label[entry.label].append(entry)
        for label, same in by_label.items():
            if len(same) > 1:
                found.append({"lines": [e.line for e in same], "text": same[0].text,
                              "label": label, "count": len(same)})
    return sorted(found, key=lambda f: (f["lines"][0] is None, f["lines"][0] or 0))


def conflicts(entries: list[Entry]) -> list[dict]:
    """The same normalised text filed under two or more labels."""
    found = []
    for group in _by_key(entries).values():
        labels: dict[str, list[int | None]] = defaultdict(list)
        for entry in group:
            labels[entry.label].append(entry.line)
        if len(labels) > 1:
            found.append({"text": group[0].text, "lines": [e.line for e in group],
                          "labels": dict(labels)})
    return sorted(found, key=lambda f: (f["lines"][0] is None, f["lines"][0] or 0))


def exact_leakage(train: list[Entry], test: list[Entry]) -> list[dict]:
    """Training entries whose normalised text also occurs in the test file."""
    test_groups = _by_key(test)
    return [{"line": e.line, "text": e.text, "label": e.label,
             "test_lines": [t.line for t in test_groups[e.key]],
             "test_labels": sorted({t.label for t in test_groups[e.key]})}
            for e in train if e.key in test_groups]


def near_findings(train: list[Entry], test: list[Entry], threshold: float,
                  pair_finder=similar_texts) -> tuple[list[dict], list[dict]]:
    """(near duplicates within train, near leakage train → test) from one MinHash pass.

    ``pair_finder(keys, threshold)`` → (i, j, similarity) triples; character 3-grams by
    default, word 3-grams for whole dialogues.
    Only distinct normalised texts take part; exact matches are the exact findings' job.
    """
    firsts: dict[tuple[int, str], Entry] = {}
    for side, entries in ((0, train), (1, test)):
        for entry in entries:
            firsts.setdefault((side, entry.key), entry)
    train_keys = {key for side, key in firsts if side == 0}
    items = [(side, e) for (side, key), e in firsts.items()
             if not (side == 1 and key in train_keys)]
    pairs = pair_finder([e.key for _, e in items], threshold)
    dups, leaks = [], []
    for i, j, sim in pairs:
        (si, a), (sj, b) = items[i], items[j]
        if si == sj == 0:
            dups.append({"lines": [a.line, b.line], "texts": [a.text, b.text],
                         "labels": [a.label, b.label], "similarity": sim})
        elif si != sj:
            a, b = (a, b) if si == 0 else (b, a)
            leaks.append({"line": a.line, "text": a.text, "label": a.label,
                          "test_line": b.line, "test_text": b.text, "test_label": b.label,
                          "similarity": sim})
    return dups, leaks


def pii_findings(items: list[tuple[int | None, str, dict]]) -> list[dict]:
    """One finding per piece of personal data; ``items`` are (line, text, extra fields)."""
    found = []
    for line, text, extra in items:
        for match in find_pii(text):
            found.append({"line": line, "kind": match.kind, "match": match.value,
                          "text": text, **extra})
    return found


def label_counts(records: list[Utterance]) -> dict[str, int]:
    """Examples per label (empty utterances excluded), most frequent first."""
    counts = Counter(r.label for r in records if r.text.strip())
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def imbalance(counts: dict[str, int], min_count: int,
              records: list[Utterance] = ()) -> dict | None:
    """Largest/smallest class ratio and the labels under ``min_count`` examples, each with
    the ``lines`` of its examples (taken from ``records``) so they are easy to find."""
    if not counts:
        return None
    lines: dict[str, list] = defaultdict(list)
    for r in records:
        if r.label in counts and counts[r.label] < min_count and r.text.strip():
            lines[r.label].append(r.line)
    (top, most), (low, least) = max(counts.items(), key=lambda kv: kv[1]), min(
        counts.items(), key=lambda kv: kv[1])
    return {"ratio": round(most / least, 2), "max": {"label": top, "count": most},
            "min": {"label": low, "count": least}, "min_count": min_count,
            "under_minimum": [{"label": k, "count": v, "lines": lines[k]}
                              for k, v in counts.items() if v < min_count]}


def empty_utterances(records: list[Utterance]) -> list[dict]:
    return [{"line": r.line, "text": r.text, "label": r.label}
            for r in records if not r.text.strip()]


def percentiles(values: list[int]) -> dict | None:
    """p50/p90/p95/p99, mean and max of a length distribution (None when empty)."""
    if not values:
        return None
    arr = np.asarray(values)
    stats = {f"p{p}": round(float(np.percentile(arr, p)), 2) for p in PERCENTILES}
    return {**stats, "mean": round(float(arr.mean()), 2), "max": int(arr.max())}


def tokenizable(texts: list[str]) -> list[str]:
    """Rust tokenizers reject lone surrogates (a JSON escape can make one): each becomes
    one replacement character, so lengths and offsets stay as they were."""
    return [t if t.isascii() else t.encode("utf-8", "replace").decode("utf-8") for t in texts]


def token_counts(tokenizer, texts: list[str], special_tokens: bool = True) -> list[int]:
    """Token counts in one batched call of the (fast) tokenizer."""
    if not texts:
        return []
    encoded = tokenizer(tokenizable(texts), add_special_tokens=special_tokens, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)
    return [len(ids) for ids in encoded["input_ids"]]


def fast_check_warnings(train: list[Utterance], evaluation: list[Utterance] | None = None,
                        train_path: str | None = None, eval_path: str | None = None) -> list[str]:
    """Exact normalised-text checks cheap enough to run before every training run."""
    entries = utterance_entries(train)
    warnings = []
    dups = exact_duplicates(entries)
    if dups:
        extra = sum(d["count"] - 1 for d in dups)
        warnings.append(f"{extra} duplicate utterance(s) in the training data "
                        f"(e.g. lines {_lines(dups[0]['lines'])})")
    clashes = conflicts(entries)
    if clashes:
        warnings.append(f"{len(clashes)} text(s) filed under more than one intent "
                        f"(e.g. lines {_lines(clashes[0]['lines'])}: {clashes[0]['text']!r})")
    if evaluation:
        leaks = exact_leakage(entries, utterance_entries(evaluation))
        if leaks:
            warnings.append(f"{len(leaks)} training utterance(s) also occur in the evaluation "
                            f"data (e.g. line {leaks[0]['line']}: {leaks[0]['text']!r})")
    if warnings:
        command = f"dialogtune data check {train_path or 'TRAIN'}"
        command += f" --test {eval_path}" if eval_path else ""
        warnings.append(f"details: {command}")
    return warnings


def _lines(lines: list, limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (", ..." if len(lines) > limit else "")


def rare_label_warnings(records: list[Utterance], minimum: int) -> list[str]:
    """One warning per intent with fewer than ``minimum`` examples (train's fast check)."""
    counts = Counter(r.label for r in records)
    return [f"intent '{label}' has only {n} example(s) (fewer than {minimum})"
            for label, n in sorted(counts.items()) if n < minimum]
