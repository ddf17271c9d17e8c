"""A folder written by ``datasets.save_to_disk``, read as intent data; a DatasetDict
contributes its train split. "Line" numbers are 1-based row numbers."""

from __future__ import annotations

from ...errors import DataError
from .base import Items, Loaded, ReadOptions
from .intent_rows import add_utterance, pick_keys


def read_hf_dataset(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every row; ClassLabel integers become their names."""
    import datasets

    try:
        data = datasets.load_from_disk(out.path)
    except FileNotFoundError:
        raise DataError("folder is not a saved Hugging Face dataset", out.path) from None
    if isinstance(data, datasets.DatasetDict):
        data = data["train" if "train" in data else next(iter(data))]
    pick_keys(out, list(data.column_names), options, None)
    names = getattr(data.features[out.label_key], "names", None)  # ClassLabel stores ints
    for index, row in enumerate(data, start=1):
        label = row[out.label_key]
        if names is not None:
            try:
                label = class_name(names, label, out.path, index, out.label_key)
            except DataError as exc:
                out.problem_from(exc)
                continue
        add_utterance(out, row[out.text_key], label, index, row)


def class_name(names: list[str], value: int | None, path: str, line: int, field: str) -> str:
    """A ClassLabel integer's name; -1 (ClassLabel's "no label") and out-of-range refused.

    Python indexing would read -1 as the last intent, silently mislabelling the row.
    """
    if value is None or not 0 <= value < len(names):
        what = "means 'no label'" if value == -1 else f"is not one of {len(names)} classes"
        raise DataError(f"label {value} at row index {line - 1} {what}; drop unlabelled rows "
                        "first: dataset.filter(lambda r: r['label'] >= 0)", path, line, field)
    return names[value]
