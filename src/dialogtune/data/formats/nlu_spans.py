"""What every NLU reader shares: reading slot spans from JSON and checking them.

A span is checked against its text once, here, whatever format it came from, so JSONL,
Rasa YAML, dialogue turns and CoNLL refuse the same spans with the same words: empty or
reversed, outside the text, overlapping another span, or cutting a word in half. A word
is a run of letters and digits (``str.isalnum``, so "clásicos" is a word), except that each
character of Chinese or Japanese is a word of its own (``script.one_word``: they are
written without spaces, and a slot such as "4分以上" in "评分是4分以上" starts between two
characters); a span boundary inside a word would train the model on half a word and can
never be predicted back from whole subword tokens.

Each problem names file, line, field and the span ("slots[1] 'city' 4:9"); strict
reading raises the first, lenient reading lists them (``base.Loaded.problem``).
"""

from __future__ import annotations

from typing import Any

from ...errors import DataError
from ..records import NluExample, Span
from ..script import one_word
from .base import Loaded


def span_problem(text: str, span: Span, previous: Span | None) -> str | None:
    """Why ``span`` cannot label ``text`` (None when it can). ``previous`` is the span
    ending last among those before it, sorted by start."""
    where = f"'{span.slot}' {span.start}:{span.end}"
    if not span.slot.strip():
        return f"span {where} has an empty slot name"
    if span.start >= span.end:
        return f"span {where} is empty or reversed (end is exclusive)"
    if span.start < 0 or span.end > len(text):
        return f"span {where} falls outside the text ({len(text)} characters)"
    if previous is not None and span.start < previous.end:
        return (f"span {where} overlaps span '{previous.slot}' "
                f"{previous.start}:{previous.end}")
    value = text[span.start:span.end]
    if value != value.strip():
        return f"span {where} starts or ends with whitespace ({value!r})"
    if _cuts(text, span.start) or _cuts(text, span.end):
        return f"span {where} cuts a word in half ({_in_context(text, span)})"
    return None


def _cuts(text: str, at: int) -> bool:
    """A boundary at ``at`` falls inside a word."""
    return 0 < at < len(text) and one_word(text[at - 1], text[at])


def _in_context(text: str, span: Span) -> str:
    """The text with the span bracketed, for an error message: 'fly to [Par]is'."""
    return f"{text[:span.start]}[{text[span.start:span.end]}]{text[span.end:]}"[:200]


def check_spans(text: str, spans: list[Span]) -> tuple[int, str] | None:
    """(index in ``spans``, message) of the first bad span, or None when all are good."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
    previous = None
    for i in order:
        message = span_problem(text, spans[i], previous)
        if message:
            return i, message
        if previous is None or spans[i].end > previous.end:
            previous = spans[i]
    return None


def parse_json_spans(text: str, raw: Any, line: int, path: str,
                     field: str = "slots") -> list[Span]:
    """``[{"slot", "start", "end", "value"?}, ...]`` → Spans; a DataError for a bad entry.
    A ``value`` that is given must equal the text it points at (a shifted offset is the
    commonest conversion bug, and the value shows it)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DataError(f"expected a list of slots, got {type(raw).__name__}", path, line, field)
    spans = []
    for i, item in enumerate(raw):
        here = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise DataError("expected an object with slot, start and end", path, line, here)
        slot, start, end = item.get("slot"), item.get("start"), item.get("end")
        if not isinstance(slot, str):
            raise DataError("'slot' must be a string", path, line, here)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise DataError("'start' and 'end' must be whole numbers", path, line, here)
        value = item.get("value")
        if value is not None and text[max(start, 0):end] != value:
            raise DataError(f"span '{slot}' {start}:{end} is "
                            f"{text[max(start, 0):end]!r} in the text, but its value is "
                            f"{value!r}", path, line, here)
        spans.append(Span(slot.strip(), start, end))
    return spans


def add_example(out: Loaded, text: Any, intent: Any, spans: list[Span], line: int,
                raw: Any = None, context: str | None = None,
                fields: tuple[str, str, str] = ("text", "intent", "slots"),
                intent_required: bool = True) -> None:
    """Keep one checked example, or report its first problem (text, intent or span).
    ``fields`` name the text, intent and slots in the file, for the problem's field."""
    text_field, intent_field, slots_field = fields
    if not isinstance(text, str):
        return out.problem(line, f"expected a string, got {type(text).__name__}", text_field)
    if not text.strip():
        return out.problem(line, "empty text", text_field)
    if intent is None and intent_required or intent is not None and (
            not isinstance(intent, str) or not intent.strip()):
        return out.problem(line, "missing or empty intent", intent_field)
    bad = check_spans(text, spans)
    if bad is not None:
        return out.problem(line, bad[1], f"{slots_field}[{bad[0]}]")
    ordered = tuple(sorted(spans, key=lambda s: s.start))
    out.keep(NluExample(text, intent and intent.strip(), ordered, context, line, out.path),
             raw)
