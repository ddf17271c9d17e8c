"""Intent JSONL (or a ``.json`` array): one object per record with a text and a label key."""

from __future__ import annotations

from ...errors import DataError
from ..files import json_records
from .base import Items, Loaded, ReadOptions
from .intent_rows import add_utterance, pick_keys


def read_json_intents(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every object of the file; keys are found per object, as records may differ."""
    for line, obj in items if items is not None else json_records(out.path):
        if isinstance(obj, DataError):
            out.problem_from(obj)
            continue
        if not isinstance(obj, dict):
            out.problem(line, "expected a JSON object per line")
            continue
        try:
            pick_keys(out, list(obj), options, line)
        except DataError as exc:
            out.problem_from(exc)
            continue
        add_utterance(out, obj[out.text_key], obj[out.label_key], line, obj)
