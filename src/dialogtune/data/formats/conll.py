"""Word-level BIO in CoNLL columns → NLU examples.

One token per line, its tag in the last column (tab- or space-separated, so CoNLL-2003's
four columns read too); a blank line ends a sentence. A sentence's intent is a comment
line before its tokens: ``# intent: BookRestaurant`` (the convention of the ATIS/SNIPS
BIO dumps that carry intents; a sentence without one has intent None). Other ``#``
lines and ``-DOCSTART-`` are skipped. The text is the tokens joined by one space, and
slot spans are character offsets into it.

Tags are ``O``, ``B-slot`` and ``I-slot`` (``I-slot`` continues the span of the same
slot). An ``I-`` tag that follows ``O`` or another slot is an error by default: in a
training file it is mostly a conversion bug, and guessing would move span boundaries.
``repair=True`` reads it as conlleval and seqeval do (it starts a new span), for IOB1
files such as the original CoNLL-2003. Any other tag is an error.
"""

from __future__ import annotations

from ...errors import DataError
from ..files import iter_lines
from ..records import Span
from .base import Items, Loaded, ReadOptions
from .nlu_spans import add_example

INTENT_PREFIX = "# intent:"


def read_conll(out: Loaded, options: ReadOptions, items: Items | None = None,
               repair: bool = False) -> None:
    """Every sentence of the file; a bad tag is a problem at its own line."""
    sentence: list[tuple[int, str, str]] = []  # (line, token, tag)
    intent: str | None = None
    for number, line in iter_lines(out.path):
        if isinstance(line, DataError):
            out.problem_from(line)
            continue
        stripped = line.strip()
        if stripped.lower().startswith(INTENT_PREFIX) and not sentence:
            intent = stripped[len(INTENT_PREFIX):].strip() or None
        elif stripped.startswith("#") or stripped.startswith("-DOCSTART-"):
            continue
        elif stripped:
            columns = stripped.split()
            if len(columns) < 2:
                out.problem(number, f"expected a token and its tag, got {stripped!r}")
                continue
            sentence.append((number, columns[0], columns[-1]))
        elif sentence:
            _add_sentence(out, sentence, intent, repair)
            sentence, intent = [], None
    if sentence:
        _add_sentence(out, sentence, intent, repair)


def _add_sentence(out: Loaded, rows: list[tuple[int, str, str]], intent: str | None,
                  repair: bool) -> None:
    """Join the tokens, turn the tags into spans, keep the example (at its first line)."""
    text, starts = "", []
    for _, token, _ in rows:
        text += " " if text else ""
        starts.append(len(text))
        text += token
    try:
        spans = bio_spans([tag for _, _, tag in rows], starts,
                          [len(token) for _, token, _ in rows], repair)
    except BioError as exc:
        return out.problem(rows[exc.index][0], str(exc), "tag")
    add_example(out, text, intent, spans, rows[0][0], rows, intent_required=False)


class BioError(ValueError):
    """A tag that cannot be read; ``index`` is its position in the sentence."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def bio_spans(tags: list[str], starts: list[int], lengths: list[int],
              repair: bool = False) -> list[Span]:
    """Spans of a BIO tag sequence over tokens at ``starts`` with ``lengths``."""
    spans: list[Span] = []
    current: str | None = None  # the slot of the span the previous token is in
    for i, tag in enumerate(tags):
        prefix, _, slot = tag.partition("-")
        if tag == "O":
            current = None
            continue
        if prefix not in ("B", "I") or not slot:
            raise BioError(i, f"unknown tag {tag!r}: expected O, B-slot or I-slot")
        end = starts[i] + lengths[i]
        if prefix == "I" and current == slot:
            spans[-1] = Span(slot, spans[-1].start, end)
            continue
        if prefix == "I" and not repair:
            after = f"'B-{current}'/'I-{current}'" if current else "'O'"
            raise BioError(i, f"tag {tag!r} follows {after}; a span starts with 'B-{slot}' "
                              "(read with repair to start one at 'I-' as conlleval does)")
        spans.append(Span(slot, starts[i], end))
        current = slot
    return spans
