"""Intent JSONL (or a ``.json`` array): one object per record with a text and a label key."""

from __future__ import annotations

from ...errors import DataError
from .base import Items, Loaded, ReadOptions, json_objects
from .intent_rows import add_utterance, pick_keys


def read_json_intents(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every object of the file; keys are found per object, as records may differ."""
    for line, obj in json_objects(out, items):
        try:
            pick_keys(out, list(obj), options, line)
        except DataError as exc:
            out.problem_from(exc)
            continue
        add_utterance(out, obj[out.text_key], obj[out.label_key], line, obj)
