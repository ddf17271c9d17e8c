"""Lenient reading for ``data check`` / ``fix`` / ``split``: the whole file, nothing stops it.

The training readers stop at the first bad row, which is right for training and wrong for
a check that must list every problem. Here a bad row becomes a ``malformed`` entry (line,
field, message) and reading goes on; so does a line over the size limit (see ``files``,
which streams the file). An empty utterance is kept with text "" so the findings can
report it. Only a file that cannot be read at all (missing, not UTF-8, no text/label
column, broken JSON array, a pretty-printed JSON object given as JSONL) raises a DataError.

Each record keeps its raw row or object (``raws``) so cleaned copies and splits are
written back in the same format with every other column or field intact.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ...errors import DataError
from .dialogue import detect_format, parse_dialogue
from ..files import check_file, csv_lines, is_json_array, json_records, unescape_cell
from .intent_csv import LABEL_COLUMNS, TEXT_COLUMNS, _pick
from ..records import Dialogue, Utterance


@dataclass
class Loaded:
    """Everything read from one file: records, their raw forms, and what could not be read."""

    path: str
    kind: str  # "intent" or "dialogue"
    format: str  # csv, jsonl (intent) / chat, sharegpt, alpaca (dialogue) / rasa
    container: str  # csv, jsonl, array (a .json list) or yaml
    utterances: list[Utterance] = field(default_factory=list)
    dialogues: list[Dialogue] = field(default_factory=list)
    raws: list[Any] = field(default_factory=list)
    malformed: list[dict] = field(default_factory=list)
    header: list[str] | None = None
    text_key: str | None = None
    label_key: str | None = None

    @property
    def records(self) -> list:
        return self.utterances if self.kind == "intent" else self.dialogues

    def problem(self, line: int | None, message: str, field_name: str | None = None) -> None:
        self.malformed.append({"file": self.path, "line": line, "field": field_name,
                               "message": message})


def detect(path: str | Path, items: Iterator[tuple[int, Any]] | None = None
           ) -> tuple[str, str, str, Iterator[tuple[int, Any]] | None]:
    """(kind, format, container, items) of a file: dialogue formats by their first JSON
    record. ``items`` is the file's (line, object) stream, read from the start again."""
    suffix = Path(path).suffix.lower()
    if suffix in (".yml", ".yaml"):
        return "intent", "rasa", "yaml", None
    if suffix not in (".json", ".jsonl"):
        return "intent", "csv", "csv", None
    container = "array" if is_json_array(path) else "jsonl"
    items = iter(items if items is not None else json_records(path))
    head = []
    for item in items:  # up to the first readable record, kept to be read again
        head.append(item)
        if not isinstance(item[1], DataError):
            break
    first = head[-1][1] if head and not isinstance(head[-1][1], DataError) else None
    fmt = detect_format(first)
    kind = "dialogue" if fmt else "intent"
    return kind, fmt or "jsonl", container, itertools.chain(head, items)


def read_lenient(path: str | Path, text_column: str | None = None,
                 label_column: str | None = None) -> Loaded:
    """Read a whole intent or dialogue file, streamed; bad rows are listed, not raised."""
    check_file(path)
    kind, detected, container, items = detect(path)
    loaded = Loaded(str(path), kind, detected, container)
    if detected == "rasa":
        from .rasa import read_rasa

        loaded.utterances = read_rasa(path)
        loaded.raws = [None] * len(loaded.utterances)
    elif detected == "csv":
        _read_csv(loaded, text_column, label_column)
    elif kind == "intent":
        _read_json_intents(loaded, items, text_column, label_column)
    else:
        _read_json_dialogues(loaded, items)
    if not loaded.records and not loaded.malformed:
        raise DataError("no examples found", str(path))
    return loaded


def _add_utterance(loaded: Loaded, text: Any, label: Any, line: int, raw: Any) -> None:
    """Keep a readable row (empty text included, for the ``empty`` finding); list the rest."""
    if not isinstance(text, str):
        loaded.problem(line, f"expected a string, got {type(text).__name__}", loaded.text_key)
    elif label is None or (isinstance(label, str) and not label.strip()):
        loaded.problem(line, "empty label", loaded.label_key)
    elif not isinstance(label, (str, int)) or isinstance(label, bool):
        loaded.problem(line, f"label must be a string, got {type(label).__name__}",
                       loaded.label_key)
    else:
        loaded.utterances.append(Utterance(text.strip(), str(label).strip(), line, loaded.path))
        loaded.raws.append(raw)


def _read_csv(loaded: Loaded, text_column: str | None, label_column: str | None) -> None:
    def too_long(error: DataError) -> None:
        loaded.problem(error.line, error.reason)

    reader = csv.reader(csv_lines(loaded.path, too_long))
    path = Path(loaded.path)
    try:
        header = [unescape_cell(h).strip() for h in next(reader)]
    except StopIteration:
        raise DataError("empty file", loaded.path) from None
    except csv.Error as exc:
        raise DataError(f"malformed CSV header: {exc}", loaded.path, 1) from None
    loaded.header = header
    loaded.text_key = _pick(header, text_column, TEXT_COLUMNS, "text", path, 1)
    loaded.label_key = _pick(header, label_column, LABEL_COLUMNS, "label", path, 1)
    ti, li = header.index(loaded.text_key), header.index(loaded.label_key)
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            loaded.problem(start, f"malformed CSV row: {exc}")
            if reader.line_num <= line:
                break
            line = reader.line_num
            continue
        line = reader.line_num
        row = [unescape_cell(cell) for cell in row]  # the text as written, for raws too
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            loaded.problem(start, f"malformed row: {len(row)} fields, the header has "
                                  f"{len(header)}")
            continue
        _add_utterance(loaded, row[ti], row[li], start, row)


def _read_json_intents(loaded: Loaded, items: Iterator[tuple[int, Any]],
                       text_column: str | None, label_column: str | None) -> None:
    path = Path(loaded.path)
    for line, obj in items:
        if isinstance(obj, DataError):
            loaded.problem(line, obj.reason)
            continue
        if not isinstance(obj, dict):
            loaded.problem(line, "expected a JSON object per line")
            continue
        try:
            loaded.text_key = _pick(list(obj), text_column, TEXT_COLUMNS, "text", path, line)
            loaded.label_key = _pick(list(obj), label_column, LABEL_COLUMNS, "label", path, line)
        except DataError as exc:
            loaded.problem(line, exc.reason, exc.field)
            continue
        _add_utterance(loaded, obj[loaded.text_key], obj[loaded.label_key], line, obj)


def _read_json_dialogues(loaded: Loaded, items: Iterator[tuple[int, Any]]) -> None:
    for line, obj in items:
        if isinstance(obj, DataError):
            loaded.problem(line, obj.reason)
            continue
        try:
            loaded.dialogues.append(parse_dialogue(obj, loaded.format, loaded.path, line))
            loaded.raws.append(obj)
        except DataError as exc:
            loaded.problem(line, exc.reason, exc.field)
