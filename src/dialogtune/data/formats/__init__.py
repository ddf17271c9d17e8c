"""Reading data files: one reader per format, strict or lenient by the same code.

``read(path, kind, strict)`` detects the format, runs its reader and returns a ``Loaded``
(records, raw forms, problems). Strict reading (training, evaluation) raises the first
problem; lenient reading (``data check``, ``fix``, ``convert``, ``split``) lists them all
with their file lines (see ``base``). ``read_intents``, ``read_dialogues`` and
``read_documents`` are the strict readers training uses, returning the records alone.

Formats: intent CSV (``intent_csv``), intent JSONL / ``.json`` array (``intent_json``),
saved Hugging Face datasets (``hf_dataset``), Rasa NLU YAML (``rasa``), dialogues as chat
messages, ShareGPT or Alpaca (``dialogue``) and raw documents (``documents``). Adding one:
write a ``Reader`` (``base``), add it to ``READERS`` and to ``detect``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from ...errors import DataError
from ..files import check_file, is_json_array, json_records
from ..records import Dialogue, Document, Utterance
from .base import Items, Loaded, Problem, Reader, ReadOptions
from .dialogue import detect_format, read_dialogue_records
from .documents import read_document_files
from .hf_dataset import read_hf_dataset
from .intent_csv import read_csv
from .intent_json import read_json_intents
from .rasa import read_rasa
from .tools_file import tools_from, with_tools

__all__ = ["Loaded", "Problem", "ReadOptions", "Reader", "detect", "read", "read_dialogues",
           "read_documents", "read_intents"]

READERS: dict[str, Reader] = {
    "csv": read_csv, "jsonl": read_json_intents, "hf": read_hf_dataset, "rasa": read_rasa,
    "dialogue": read_dialogue_records, "documents": read_document_files,
}
NOTHING_FOUND = {"intent": "no examples found", "dialogue": "no dialogues found",
                 "documents": "no documents found"}


def detect(path: str | Path, kind: str | None = None
           ) -> tuple[str, str | None, str, Items | None]:
    """(kind, format, container, items) of ``path``. With no ``kind``, a JSON file holds
    dialogues when its first readable record is one; ``items`` is then the file's
    (line, object) stream, read from the start again."""
    path = Path(path)
    suffix = path.suffix.lower()
    if kind == "documents":
        return kind, "documents", "documents", None
    if kind == "dialogue":
        return kind, None, "array" if is_json_array(path) else "jsonl", None
    if kind == "intent" and path.is_dir():
        return kind, "hf", "hf", None
    if suffix in (".yml", ".yaml"):
        return "intent", "rasa", "yaml", None
    if suffix not in (".json", ".jsonl"):
        return "intent", "csv", "csv", None
    container = "array" if is_json_array(path) else "jsonl"
    if kind == "intent":
        return kind, "jsonl", container, None
    fmt, items = _first_format(json_records(path))
    return ("dialogue" if fmt else "intent"), fmt or "jsonl", container, items


def _first_format(items: Items) -> tuple[str | None, Items]:
    """The dialogue format of the first readable record, and the stream to read again."""
    items, head = iter(items), []
    for item in items:  # up to the first readable record, kept to be read again
        head.append(item)
        if not isinstance(item[1], DataError):
            return detect_format(item[1]), itertools.chain(head, items)
    return None, iter(head)


def read(path: str | Path, kind: str | None = None, strict: bool = True, fmt: str = "auto",
         text_column: str | None = None, label_column: str | None = None) -> Loaded:
    """Read ``path`` as ``kind`` (intent, dialogue, documents; None detects intent or
    dialogue in one file). ``strict`` raises the first problem, otherwise they are listed."""
    if kind is None:
        check_file(path)  # detection reads one file; folders need their kind named
    kind, detected, container, items = detect(path, kind)
    if kind == "dialogue" and detected is None and fmt not in (None, "auto"):
        detected = fmt
    out = Loaded(str(path), kind, detected, container, strict)
    reader = READERS["dialogue" if kind == "dialogue" else detected]
    reader(out, ReadOptions(text_column, label_column), items)
    if not out.records and not out.problems:
        raise DataError(NOTHING_FOUND[kind], str(path))
    return out


def read_intents(path: str | Path, text_column: str | None = None,
                 label_column: str | None = None, require_labels: int = 2) -> list[Utterance]:
    """Labelled utterances of a CSV, JSONL, Rasa YAML or saved ``datasets`` folder; the
    first bad row raises a DataError with file, line and field."""
    records = read(path, "intent", True, text_column=text_column,
                   label_column=label_column).utterances
    labels = {r.label for r in records}
    if len(labels) < require_labels:
        raise DataError(f"found {len(labels)} distinct label(s); intent training needs at "
                        f"least {require_labels}", str(path))
    return records


def read_dialogues(path: str | Path, fmt: str = "auto",
                   tools: str | Path | None = None) -> list[Dialogue]:
    """Every dialogue in ``path``; ``fmt`` is auto, chat, sharegpt or alpaca. ``tools``:
    a tools file (``--tools``) for the dialogues without tools of their own."""
    file_tools = tools_from(tools)  # a bad tools file stops before the data is read
    return with_tools(read(path, "dialogue", True, fmt).dialogues, file_tools)


def read_documents(path: str | Path) -> list[Document]:
    """Every document of a .txt / .md file or a folder; an empty one raises naming it."""
    return read(path, "documents", True).documents
