"""What every format reader shares: the result (``Loaded``), its ``Problem`` entries and
the ``Reader`` protocol.

One reader per format serves both modes. A reader hands every row it cannot read to
``Loaded.problem``: in strict mode (training, evaluation) that raises the problem as a
DataError at once, so the first bad row stops the run; in lenient mode (``data check``,
``fix``, ``convert``, ``split``) it is listed and reading goes on. Only a file that cannot
be read at all (missing, not UTF-8, no text column, broken JSON array or YAML) raises in
both modes. Lenient reading also keeps each record's raw row or object (``raws``), so
cleaned copies and splits are written back with every other column or field intact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Protocol

from ...errors import DataError
from ..files import json_records
from ..records import Dialogue, Document, NluExample, Preference, Utterance


@dataclass(frozen=True)
class Problem:
    """A row that could not be read, located by file, line and field."""

    file: str
    line: int | None
    field: str | None
    message: str

    def error(self) -> DataError:
        """The DataError strict reading raises for this problem."""
        return DataError(self.message, self.file, self.line, self.field)

    def as_dict(self) -> dict:
        """The ``malformed`` entry of ``data check``'s JSON report."""
        return asdict(self)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader can be told: the intent columns or keys when they are not guessed."""

    text_column: str | None = None
    label_column: str | None = None


@dataclass
class Loaded:
    """Everything read from one file: records, their raw forms, and what could not be read."""

    path: str
    kind: str  # "intent", "dialogue", "documents", "nlu" or "preference"
    format: str | None  # csv, jsonl, hf, rasa / chat, sharegpt, alpaca / documents / conll
    container: str  # csv, jsonl, array (a .json list), yaml, hf or documents
    strict: bool = True
    utterances: list[Utterance] = field(default_factory=list)
    dialogues: list[Dialogue] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    examples: list[NluExample] = field(default_factory=list)  # kind "nlu"
    preferences: list[Preference] = field(default_factory=list)  # kind "preference"
    raws: list[Any] = field(default_factory=list)  # lenient reading only
    problems: list[Problem] = field(default_factory=list)
    header: list[str] | None = None
    text_key: str | None = None
    label_key: str | None = None

    @property
    def records(self) -> list:
        return {"intent": self.utterances, "dialogue": self.dialogues,
                "documents": self.documents, "nlu": self.examples,
                "preference": self.preferences}[self.kind]

    @property
    def malformed(self) -> list[dict]:
        """The problems as ``data check`` reports them (file, line, field, message)."""
        return [p.as_dict() for p in self.problems]

    def refuse_unreadable(self, records: list, hint: str, text_field: str | None = None
                          ) -> None:
        """Stop at the first unreadable row or empty text of a leniently read file, for
        verbs that rewrite a file whole (``convert``): ``hint`` says what to run first."""
        if self.problems:
            first = self.problems[0]
            raise DataError(f"{first.message} ({hint})", first.file, first.line, first.field)
        empty = next((r for r in records if not r.text.strip()), None)
        if empty is not None:
            raise DataError("empty text (dialogtune data fix drops empty rows)", self.path,
                            empty.line, text_field)

    def problem(self, line: int | None, message: str, field_name: str | None = None,
                file: str | None = None) -> None:
        """Strict: raise it now. Lenient: list it; the reader skips the row and reads on."""
        found = Problem(file or self.path, line, field_name, message)
        if self.strict:
            raise found.error()
        self.problems.append(found)

    def problem_from(self, error: DataError) -> None:
        """A DataError met while reading one row (too long, bad JSON, bad field)."""
        self.problem(error.line, error.reason, error.field, error.path)

    def refuse_for_training(self, line: int | None, message: str,
                            field_name: str | None = None) -> None:
        """A row training cannot use but a check keeps and reports as its own finding
        (an empty utterance is ``empty``, not ``malformed``): raised in strict mode only."""
        if self.strict:
            raise Problem(self.path, line, field_name, message).error()

    def keep(self, record, raw: Any = None) -> None:
        """Add a record read without problems (and its raw form when reading leniently)."""
        self.records.append(record)
        if not self.strict:
            self.raws.append(raw)


Items = Iterator[tuple[int, Any]]


class Reader(Protocol):
    """Fill ``out`` with the records of ``out.path``, each unreadable row through
    ``out.problem``. ``items`` is the file's (line, object) stream when format detection
    already started reading it (JSON formats only)."""

    def __call__(self, out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
        ...


def json_objects(out: Loaded, items: Items | None = None) -> Iterator[tuple[int, dict]]:
    """(line, object) for every JSON object of ``out.path`` (or of ``items``): a malformed
    line or a value that is not an object is reported as a problem and skipped."""
    for line, obj in items if items is not None else json_records(out.path):
        if isinstance(obj, DataError):
            out.problem_from(obj)
        elif not isinstance(obj, dict):
            out.problem(line, "expected a JSON object per line")
        else:
            yield line, obj
