"""Writing records back to disk: the input's own format (fix, split, sample) or a chosen one.

Every data file and report goes through ``write_atomic`` (``dialogtune.atomic``:
temporary sibling, fsync, rename), so an interrupted write never leaves half a file. Lone surrogates (which JSON escapes can smuggle into strings)
are written as JSON escapes rather than crashing the UTF-8 encoder.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any, Iterable

from ...errors import DataError
from ...atomic import atomic_path
from ..files import escape_cell
from ..formats import Loaded
from ..formats.intent_rows import TEXT_COLUMNS


def refuse_same_file(source: str | Path, target: str | Path) -> None:
    """Never overwrite the input: a cleaned copy must leave the original to compare."""
    source, target = Path(source), Path(target)
    if target.exists() and source.resolve() == target.resolve():
        raise DataError("the output is the input file; write the result to a new file",
                        str(target))


def write_atomic(path: str | Path, write) -> None:
    """Write text through ``write(handle)`` to a temporary sibling, then fsync and rename
    it; lone surrogates become backslash escapes instead of stopping the write."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding="utf-8", errors="backslashreplace", newline="") as handle:
            write(handle)


def write_csv(path: str | Path, header: list[str], rows: Iterable[list[str]]) -> None:
    """A CSV whose cells cannot run as spreadsheet formulas (``files.escape_cell``: a
    leading "'" before =, +, -, @, tab, CR); dialogtune's CSV readers remove it again."""
    def write(handle):
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([escape_cell(cell) for cell in header])
        writer.writerows([escape_cell(cell) for cell in row] for row in rows)
    write_atomic(path, write)


def write_jsonl(path: str | Path, objects: Iterable[Any]) -> None:
    def write(handle):
        for obj in objects:
            handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
    write_atomic(path, write)


def write_json_array(path: str | Path, objects: Iterable[Any]) -> None:
    def write(handle):
        json.dump(list(objects), handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    write_atomic(path, write)


def ensure_writable(loaded: Loaded) -> None:
    """Rasa YAML is read, never written: say how to get a writable copy."""
    if loaded.container == "yaml":
        raise DataError("Rasa YAML is import-only; convert it first: dialogtune data convert "
                        f"{loaded.path} --to csv --output FILE", loaded.path)


def write_like(loaded: Loaded, raws: list[Any], path: str | Path) -> None:
    """Write raw rows/objects in ``loaded``'s own container (CSV, JSONL or a JSON list)."""
    ensure_writable(loaded)
    if loaded.container == "csv":
        write_csv(path, loaded.header or [], raws)
    elif loaded.container == "array":
        write_json_array(path, raws)
    else:
        write_jsonl(path, raws)


def with_text(loaded: Loaded, raw: Any, text: str) -> Any:
    """An intent row/object with its text replaced (other columns kept)."""
    if isinstance(raw, list):
        row = list(raw)
        row[loaded.header.index(loaded.text_key)] = text
        return row
    key = loaded.text_key if loaded.text_key in raw else next(
        k for k in TEXT_COLUMNS if k in raw)
    return {**raw, key: text}


# The fields holding turn text in each dialogue format, for redaction in place.
TEXT_FIELDS = {"chat": ("messages", "content"), "sharegpt": ("conversations", "value")}


def map_dialogue_texts(raw: dict, fmt: str, change) -> dict:
    """A copy of a raw dialogue object with ``change`` applied to every turn's text."""
    out = copy.deepcopy(raw)
    if fmt in TEXT_FIELDS:
        listing, key = TEXT_FIELDS[fmt]
        for item in out.get(listing, []):
            if isinstance(item, dict) and isinstance(item.get(key), str):
                item[key] = change(item[key])
    fields = ("system",) if fmt != "alpaca" else ("system", "instruction", "input", "output")
    for name in fields:
        if isinstance(out.get(name), str):
            out[name] = change(out[name])
    if fmt == "alpaca" and isinstance(out.get("history"), list):
        out["history"] = [[change(t) if isinstance(t, str) else t for t in pair]
                          if isinstance(pair, list) else pair for pair in out["history"]]
    return out
