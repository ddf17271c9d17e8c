"""Intent CSV: a header naming the text and label columns, one utterance per row.

Streamed line by line (``files.csv_lines``), so a line over the size limit is a problem
of its own line and ``reader.line_num`` stays the file's line number. Cells escaped
against spreadsheet formulas by dialogtune's writers are read back unescaped.
"""

from __future__ import annotations

import csv

from ...errors import DataError
from ..files import csv_lines, unescape_cell
from .base import Items, Loaded, ReadOptions
from .intent_rows import add_utterance, pick_keys


def read_csv(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every row of an intent CSV; a malformed row or bad value goes to ``out.problem``."""
    reader = csv.reader(csv_lines(out.path, out.problem_from))
    try:
        header = [unescape_cell(h).strip() for h in next(reader)]
    except StopIteration:
        raise DataError("empty file", out.path) from None
    except csv.Error as exc:
        raise DataError(f"malformed CSV header: {exc}", out.path, 1) from None
    out.header = header
    pick_keys(out, header, options, 1)
    ti, li = header.index(out.text_key), header.index(out.label_key)
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.problem(start, f"malformed CSV row: {exc}")
            if reader.line_num <= line:
                break
            line = reader.line_num
            continue
        line = reader.line_num
        _read_row(out, [unescape_cell(cell) for cell in row], start, ti, li)


def _read_row(out: Loaded, row: list[str], line: int, ti: int, li: int) -> None:
    """One unescaped row (the text as written, kept as the raw form too)."""
    if not row or all(not cell.strip() for cell in row):
        return
    if len(row) != len(out.header):
        return out.problem(line, f"malformed row: {len(row)} fields, the header has "
                                 f"{len(out.header)}")
    add_utterance(out, row[ti], row[li], line, row)
