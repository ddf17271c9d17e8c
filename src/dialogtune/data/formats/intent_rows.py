"""What the intent readers (CSV, JSON, saved datasets) share: finding the text and label
columns, and turning one row into an Utterance or a problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError
from ..records import Utterance
from .base import Loaded

TEXT_COLUMNS = ("text", "utterance", "sentence")
LABEL_COLUMNS = ("label", "category", "intent")


def pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], kind: str,
                path: str | Path, line: int | None) -> str:
    """``wanted`` if present, else the first known name; a DataError naming the columns."""
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{kind} column '{wanted}' not found; columns are {columns}",
                            str(path), line, wanted)
        return wanted
    for name in candidates:
        if name in columns:
            return name
    raise DataError(f"no {kind} column: expected one of {list(candidates)}, found {columns} "
                    f"(use --{kind}-column)", str(path), line)


def pick_keys(out: Loaded, columns: list[str], options, line: int | None) -> None:
    """Set ``out.text_key`` / ``out.label_key`` for a header or one JSON object."""
    out.text_key = pick_column(columns, options.text_column, TEXT_COLUMNS, "text", out.path, line)
    out.label_key = pick_column(columns, options.label_column, LABEL_COLUMNS, "label", out.path,
                                line)


def add_utterance(out: Loaded, text: Any, label: Any, line: int, raw: Any = None) -> None:
    """Keep a readable row; an empty text is kept by lenient reading (for the ``empty``
    finding) and refused by strict reading; any other bad value is a problem."""
    if not isinstance(text, str):
        return out.problem(line, f"expected a string, got {type(text).__name__}", out.text_key)
    if not text.strip():
        out.refuse_for_training(line, "empty text", out.text_key)
    if label is None or (isinstance(label, str) and not label.strip()):
        return out.problem(line, "empty label", out.label_key)
    if not isinstance(label, (str, int)) or isinstance(label, bool):
        return out.problem(line, f"label must be a string, got {type(label).__name__}",
                           out.label_key)
    out.keep(Utterance(text.strip(), str(label).strip(), line, out.path), raw)
