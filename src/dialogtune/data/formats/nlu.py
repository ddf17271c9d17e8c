"""Reading joint intent + slot data (kind "nlu") from any of its four formats.

``read_nlu(path)`` detects the format from the file name and, for JSON, the first
readable record: ``.yml``/``.yaml`` is Rasa NLU (``rasa.read_rasa_nlu``), JSON with
``messages`` is dialogue turns (``nlu_json.read_nlu_dialogues``), other JSON is
``{"text", "intent", "slots"}`` records (``nlu_json.read_nlu_jsonl``), anything else is
CoNLL BIO columns (``conll.read_conll``). Strict and lenient reading work as for the
other kinds (``base``): every span problem names file, line, field and span.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

from ...errors import DataError
from ..files import check_file, is_json_array, json_records, read_text
from ..records import NluExample
from .base import Items, Loaded, ReadOptions
from .conll import read_conll
from .nlu_json import read_nlu_dialogues, read_nlu_jsonl
from .rasa import ENTITY, read_rasa_nlu

NLU_FORMATS = ("jsonl", "rasa", "dialogue", "conll")
CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".iob2")
# the fields a span problem is reported under, whatever the format (see ``is_span_problem``)
_SPAN_FIELD = re.compile(r"(?:^|\.)(?:slots|entities)\[\d+\]$|^tag$")


def looks_like_nlu(path: str | Path) -> bool:
    """Whether ``path`` holds slot-annotated data that a plain intent read would flatten:
    CoNLL columns (``.conll``, ``.bio``, ``.iob``), Rasa YAML with an entity annotation,
    or JSON records whose first readable one has a ``slots`` list and no ``messages``.
    Dialogue files stay dialogues (their turns are NLU data only when asked for)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return path.is_file()
    try:
        if suffix in (".yml", ".yaml"):
            return bool(ENTITY.search(read_text(check_file(path))))
        if suffix not in (".json", ".jsonl"):
            return False
        for _, obj in json_records(check_file(path)):
            if not isinstance(obj, DataError):
                return isinstance(obj, dict) and "messages" not in obj and \
                    isinstance(obj.get("slots"), list)
    except DataError:  # the regular reader reports what is wrong with the file
        return False
    return False


def is_span_problem(field: str | None) -> bool:
    """A lenient reading problem about one slot span (bounds, overlap, word cut, a value
    that does not match its offsets, a bad BIO tag), not about the row as a whole."""
    return bool(field and _SPAN_FIELD.search(field))


def detect_nlu(path: str | Path) -> tuple[str, str, Items | None]:
    """(format, container, items) of an NLU file; ``items`` replays the JSON records
    read to tell dialogue turns from utterance records."""
    path = check_file(path)
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        return "rasa", "yaml", None
    if suffix not in (".json", ".jsonl"):
        return "conll", "conll", None
    container = "array" if is_json_array(path) else "jsonl"
    items, head = iter(json_records(path)), []
    for item in items:  # up to the first readable record, kept to be read again
        head.append(item)
        if not isinstance(item[1], DataError):
            break
    first = head[-1][1] if head else None
    fmt = "dialogue" if isinstance(first, dict) and "messages" in first else "jsonl"
    return fmt, container, itertools.chain(head, items)


def read_nlu(path: str | Path, strict: bool = True, fmt: str = "auto",
             context: bool = False, repair_bio: bool = False,
             text_column: str | None = None, intent_column: str | None = None) -> Loaded:
    """Read ``path`` as NLU examples. ``context`` keeps the assistant turn before each
    dialogue user turn; ``repair_bio`` reads a CoNLL 'I-' without 'B-' as a span start."""
    detected, container, items = detect_nlu(path)
    if fmt not in ("auto", None):
        if fmt not in NLU_FORMATS:
            raise DataError(f"unknown NLU format '{fmt}'; choose one of "
                            f"{', '.join(NLU_FORMATS)}", str(path))
        detected = fmt
    readers = {"jsonl": read_nlu_jsonl, "rasa": read_rasa_nlu,
               "dialogue": functools.partial(read_nlu_dialogues, context=context),
               "conll": functools.partial(read_conll, repair=repair_bio)}
    out = Loaded(str(path), "nlu", detected, container, strict)
    readers[detected](out, ReadOptions(text_column, intent_column),
                      items if detected in ("jsonl", "dialogue") else None)
    if not out.examples and not out.problems:
        raise DataError("no NLU examples found", str(path))
    return out


def read_nlu_examples(path: str | Path, **options) -> list[NluExample]:
    """The examples of ``path``, strictly read: the first bad row raises a DataError."""
    return read_nlu(path, True, **options).examples
