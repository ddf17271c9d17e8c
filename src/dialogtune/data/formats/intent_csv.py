"""Intent data readers: CSV, JSONL and saved Hugging Face datasets → Utterance records."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from ...errors import DataError
from ..files import csv_lines, strict_json_records, unescape_cell
from ..records import Utterance

TEXT_COLUMNS = ("text", "utterance", "sentence")
LABEL_COLUMNS = ("label", "category", "intent")


def read_intents(path: str | Path, text_column: str | None = None,
                 label_column: str | None = None, require_labels: int = 2) -> list[Utterance]:
    """Read labelled utterances from a CSV, JSONL or saved ``datasets`` folder.

    Every row is validated; the first bad one raises a DataError with file, line and field.
    """
    path = Path(path)
    if path.is_dir():
        records = _read_hf_dataset(path, text_column, label_column)
    elif path.suffix.lower() in (".jsonl", ".json"):
        records = _read_jsonl(path, text_column, label_column)
    else:
        records = _read_csv(path, text_column, label_column)
    if not records:
        raise DataError("no examples found", str(path))
    labels = {r.label for r in records}
    if len(labels) < require_labels:
        raise DataError(f"found {len(labels)} distinct label(s); intent training needs at "
                        f"least {require_labels}", str(path))
    return records


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], kind: str,
          path: Path, line: int | None) -> str:
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


def _make(text: object, label: object, path: Path, line: int, text_key: str,
          label_key: str) -> Utterance:
    if not isinstance(text, str):
        raise DataError(f"expected a string, got {type(text).__name__}", str(path), line, text_key)
    if not text.strip():
        raise DataError("empty text", str(path), line, text_key)
    if label is None or (isinstance(label, str) and not label.strip()):
        raise DataError("empty label", str(path), line, label_key)
    if not isinstance(label, (str, int)) or isinstance(label, bool):
        raise DataError(f"label must be a string, got {type(label).__name__}", str(path), line,
                        label_key)
    return Utterance(text.strip(), str(label).strip(), line, str(path))


def _read_csv(path: Path, text_column: str | None, label_column: str | None) -> list[Utterance]:
    reader = csv.reader(csv_lines(path))  # streamed; a line over the size limit raises
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("empty file", str(path)) from None
    except csv.Error as exc:
        raise DataError(f"malformed CSV header: {exc}", str(path), 1) from None
    header = [unescape_cell(h).strip() for h in header]
    text_key = _pick(header, text_column, TEXT_COLUMNS, "text", path, 1)
    label_key = _pick(header, label_column, LABEL_COLUMNS, "label", path, 1)
    ti, li = header.index(text_key), header.index(label_key)
    records, line = [], reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"malformed CSV row: {exc}", str(path), start) from None
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(f"malformed row: {len(row)} fields, the header has {len(header)}",
                            str(path), start)
        records.append(_make(unescape_cell(row[ti]), unescape_cell(row[li]), path, start,
                             text_key, label_key))
    return records


def _read_jsonl(path: Path, text_column: str | None, label_column: str | None) -> list[Utterance]:
    records = []
    for number, obj in strict_json_records(path):
        if not isinstance(obj, dict):
            raise DataError("expected a JSON object per line", str(path), number)
        keys = list(obj)
        text_key = _pick(keys, text_column, TEXT_COLUMNS, "text", path, number)
        label_key = _pick(keys, label_column, LABEL_COLUMNS, "label", path, number)
        records.append(_make(obj[text_key], obj[label_key], path, number, text_key, label_key))
    return records


def _read_hf_dataset(path: Path, text_column: str | None,
                     label_column: str | None) -> list[Utterance]:
    """A folder written by ``datasets.save_to_disk``; a DatasetDict contributes its train split."""
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError("folder is not a saved Hugging Face dataset", str(path)) from None
    if isinstance(data, datasets.DatasetDict):
        split = "train" if "train" in data else next(iter(data))
        data = data[split]
    columns = list(data.column_names)
    text_key = _pick(columns, text_column, TEXT_COLUMNS, "text", path, None)
    label_key = _pick(columns, label_column, LABEL_COLUMNS, "label", path, None)
    feature = data.features[label_key]
    names = getattr(feature, "names", None)  # ClassLabel stores ints
    records = []
    for index, row in enumerate(data, start=1):
        label = row[label_key]
        if names is not None:
            label = _class_name(names, label, path, index, label_key)
        records.append(_make(row[text_key], label, path, index, text_key, label_key))
    return records


def _class_name(names: list[str], value: int | None, path: Path, line: int, field: str) -> str:
    """A ClassLabel integer's name; -1 (ClassLabel's "no label") and out-of-range refused.

    Python indexing would read -1 as the last intent, silently mislabelling the row.
    """
    if value is None or not 0 <= value < len(names):
        what = "means 'no label'" if value == -1 else f"is not one of {len(names)} classes"
        raise DataError(f"label {value} at row index {line - 1} {what}; drop unlabelled rows "
                        "first: dataset.filter(lambda r: r['label'] >= 0)",
                        str(path), line, field)
    return names[value]


def rare_label_warnings(records: list[Utterance], minimum: int) -> list[str]:
    """One warning per intent with fewer than ``minimum`` examples."""
    counts = Counter(r.label for r in records)
    return [f"intent '{label}' has only {n} example(s) (fewer than {minimum})"
            for label, n in sorted(counts.items()) if n < minimum]


def stratified_split(records: list[Utterance], fraction: float,
                     seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """Hold out ``fraction`` of each label (at least one where a label has 2+ examples).

    ``fraction`` 0 holds out nothing: training then uses every example and keeps the last
    weights, with no best-epoch choice and no out-of-scope calibration.

    Written here rather than with scikit-learn because its stratified split refuses
    labels with a single example, which small domain data sets always have.
    """
    import random

    by_label: dict[str, list[Utterance]] = {}
    for record in records:
        by_label.setdefault(record.label, []).append(record)
    rng = random.Random(seed)
    train, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        take = 0 if len(group) < 2 or fraction <= 0 else max(1, round(len(group) * fraction))
        held.extend(group[:take])
        train.extend(group[take:])
    return train, held
