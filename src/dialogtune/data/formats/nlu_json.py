"""NLU from JSON: ``{"text", "intent", "slots"}`` records, and dialogues' user turns.

JSONL (or a ``.json`` array), one utterance per record — the SNIPS layout::

    {"text": "fly to paris", "intent": "Book", "slots": [{"slot": "city", "start": 7,
     "end": 12, "value": "paris"}]}

Dialogue JSONL (chat messages) gives one example per user turn that has an ``intent``;
turns without one carry no NLU label and are skipped. With ``context=True`` an example
keeps the assistant turn right before it, since answers such as "In checking." only
have a slot given the question.
"""

from __future__ import annotations

from ...errors import DataError
from ..files import json_records
from .base import Items, Loaded, ReadOptions, json_objects
from .nlu_spans import add_example, parse_json_spans


def read_nlu_jsonl(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every ``{"text", "intent", "slots"}`` record (``slots`` may be absent: none)."""
    text_key = options.text_column or "text"
    intent_key = options.label_column or "intent"
    for line, obj in json_objects(out, items):
        text = obj.get(text_key)
        try:
            spans = parse_json_spans(text, obj.get("slots"), line, out.path) \
                if isinstance(text, str) else []
        except DataError as exc:
            out.problem_from(exc)
            continue
        add_example(out, text, obj.get(intent_key), spans, line, obj,
                    fields=(text_key, intent_key, "slots"))


def read_nlu_dialogues(out: Loaded, options: ReadOptions, items: Items | None = None,
                       context: bool = False) -> None:
    """One example per user turn with an ``intent``; ``context`` keeps the question."""
    for line, obj in items if items is not None else json_records(out.path):
        if isinstance(obj, DataError):
            out.problem_from(obj)
            continue
        messages = obj.get("messages") if isinstance(obj, dict) else None
        if not isinstance(messages, list):
            out.problem(line, "expected an object with a 'messages' list", "messages")
            continue
        found = len(out.examples) + len(out.problems)
        for i, turn in enumerate(messages):
            if isinstance(turn, dict) and turn.get("role") == "user" and "intent" in turn:
                _add_turn(out, messages, i, line, context)
        if len(out.examples) + len(out.problems) == found:
            out.problem(line, "no user turn with an 'intent'", "messages")


def _add_turn(out: Loaded, messages: list, i: int, line: int, context: bool) -> None:
    """The user turn ``messages[i]`` as an example (raw form: the turn itself)."""
    turn, field = messages[i], f"messages[{i}]"
    text = turn.get("content")
    try:
        spans = parse_json_spans(text, turn.get("slots"), line, out.path, f"{field}.slots") \
            if isinstance(text, str) else []
    except DataError as exc:
        return out.problem_from(exc)
    before = messages[i - 1] if i > 0 else None
    question = before.get("content") if isinstance(before, dict) and \
        before.get("role") == "assistant" else None
    add_example(out, text, turn.get("intent"), spans, line, turn,
                question if context and isinstance(question, str) else None,
                (f"{field}.content", f"{field}.intent", f"{field}.slots"))
