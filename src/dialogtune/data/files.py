"""Reading data files safely: streamed line by line, size-limited, errors located by line.

JSONL and CSV files are read one line at a time, never as one string, so memory follows
the largest line rather than the file, and a line over ``max_line_chars()`` (default
1 MiB of text, ``DIALOGTUNE_MAX_LINE_CHARS`` to change it) is refused with its file and
line instead of being parsed, tokenised and reported at great cost. A ``.json`` array has
to be read whole, so it is refused above ``max_json_bytes()`` (default 256 MiB,
``DIALOGTUNE_MAX_JSON_BYTES``); JSONL has no total limit.

Every JSON reader (intent and dialogue, strict and lenient; see ``formats``) reads
records through ``json_records``, so array items and JSONL lines are numbered alike.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError, DialogtuneError

LINE_ENV, DEFAULT_LINE_CHARS = "DIALOGTUNE_MAX_LINE_CHARS", 1 << 20
JSON_ENV, DEFAULT_JSON_BYTES = "DIALOGTUNE_MAX_JSON_BYTES", 256 << 20
# Bytes that are not UTF-8 come back from errors="surrogateescape" as U+DC80..U+DCFF;
# valid UTF-8 can never decode to a lone surrogate, so one found here is a bad byte.
_BAD_BYTE = re.compile("[\udc80-\udcff]")
SPREAD_OBJECT = ("a JSON object spread over several lines; JSONL needs one object per line "
                 "(or give a .json file holding a JSON array of objects)")
SPREAD_ARRAY = ("a JSON array spread over several lines; JSONL needs one object per line "
                "(or name the file .json to read it as an array)")


def _env_limit(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DialogtuneError(f"{name} must be a positive whole number, got {raw!r}")
    return value


def max_line_chars() -> int:
    """The longest line (in characters) a data file may hold; read at each call."""
    return _env_limit(LINE_ENV, DEFAULT_LINE_CHARS)


def max_json_bytes() -> int:
    """The largest ``.json`` array file, which has to be read whole."""
    return _env_limit(JSON_ENV, DEFAULT_JSON_BYTES)


def check_file(path: str | Path) -> Path:
    """``path`` as a Path, or a DataError when it is missing or a folder."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", str(path))
    if path.is_dir():
        raise DataError("is a folder, expected a file", str(path))
    return path


def _not_utf8(path: Path, line: int, text: str) -> DataError:
    byte = ord(_BAD_BYTE.search(text).group()) - 0xDC00
    return DataError(f"not valid UTF-8 (byte 0x{byte:02x}); re-save the file as UTF-8",
                     str(path), line)


def read_text(path: str | Path, limit: int | None = None) -> str:
    """A whole UTF-8 file (BOM allowed); bad bytes and files over ``limit`` bytes refused."""
    path = check_file(path)
    if limit is not None and path.stat().st_size > limit:
        raise DataError(f"file is over {limit:,} bytes, too large to read whole; use JSONL "
                        f"(one object per line), which is streamed, or raise {JSON_ENV}",
                        str(path))
    text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    bad = _BAD_BYTE.search(text)
    if bad:
        raise _not_utf8(path, text.count("\n", 0, bad.start()) + 1, bad.group())
    return text


def iter_lines(path: str | Path, newline: str = "\n") -> Iterator[tuple[int, str | DataError]]:
    """(line number, text with its line ending) streamed; a line that is too long comes
    as a DataError in place of its text (the rest of it is skipped unread).

    ``newline="\\n"`` (JSONL) ends lines at "\\n" only: JSON allows U+2028 and friends
    inside strings, and splitting there would shift every later line number.
    ``newline=""`` (CSV) also ends them at a lone "\\r", as the csv module expects.
    Bytes that are not UTF-8 stop reading with a DataError naming the line.
    """
    path = check_file(path)
    limit = max_line_chars()
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline=newline) as handle:
        number = 0
        while line := handle.readline(limit + 1):
            number += 1
            if len(line) > limit and line[-1] not in "\r\n":
                while (rest := handle.readline(limit)) and rest[-1] not in "\r\n":
                    pass
                yield number, DataError(f"line longer than {limit:,} characters; split it or "
                                        f"raise {LINE_ENV}", str(path), number)
                continue
            if _BAD_BYTE.search(line):
                raise _not_utf8(path, number, line)
            yield number, line


def is_json_array(path: str | Path) -> bool:
    """A ``.json`` file whose first non-blank character is "[" (read as one JSON list)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        while chunk := handle.read(65536):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0] == "["
    return False


def json_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line, object) of a JSONL file or a ``.json`` array, lazily; an unreadable record
    (bad JSON, too long) comes as a DataError in its place. A pretty-printed object or
    array in place of JSONL is refused at once with a DataError saying so.
    """
    path = check_file(path)
    if is_json_array(path):
        yield from json_array_items(read_text(path, max_json_bytes()), str(path))
        return
    first = True
    for number, raw in iter_lines(path, "\n"):
        if isinstance(raw, DataError):
            first = False
            yield number, raw
            continue
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            if first:
                _refuse_spread_json(path, number, raw)
            obj = DataError(f"malformed JSON: {getattr(exc, 'msg', 'nested too deeply')}",
                            str(path), number)
        first = False
        yield number, obj


def _refuse_spread_json(path: Path, number: int, raw: str) -> None:
    """Raise the one-line explanation when the first record is JSON spread over lines."""
    opener = raw.lstrip()[:1]
    if opener not in ("{", "[") or path.stat().st_size > max_json_bytes():
        return
    text = read_text(path)
    start = len(text) - len(text.lstrip())
    try:
        obj, end = json.JSONDecoder().raw_decode(text, start)
    except (json.JSONDecodeError, RecursionError):
        return
    if "\n" in text[start:end]:
        raise DataError(SPREAD_OBJECT if isinstance(obj, dict) else SPREAD_ARRAY,
                        str(path), number)


def json_array_items(text: str, path: str) -> Iterator[tuple[int, Any]]:
    """Items of a top-level JSON list, each with the file line where it starts; an item
    longer than ``max_line_chars()`` comes as a DataError (a record limit, as for JSONL)."""
    decoder, limit = json.JSONDecoder(), max_line_chars()
    pos = _skip_space(text, text.index("[") + 1)
    if text.startswith("]", pos):
        return
    line, counted = 1, 0
    while True:
        line, counted = line + text.count("\n", counted, pos), pos  # incremental: O(n)
        try:
            obj, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            raise DataError("malformed JSON array", path, line) from None
        if end - pos > limit:
            obj = DataError(f"record longer than {limit:,} characters; split it or raise "
                            f"{LINE_ENV}", path, line)
        yield line, obj
        pos = _skip_space(text, end)
        if text.startswith("]", pos):
            return
        if not text.startswith(",", pos):
            raise DataError("malformed JSON array: expected ',' or ']'", path,
                            line + text.count("\n", counted, pos))
        pos = _skip_space(text, pos + 1)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def csv_lines(path: str | Path, on_error=None) -> Iterator[str]:
    """Lines for ``csv.reader``, streamed. A line that is too long raises its DataError,
    or with ``on_error`` is reported through it and read as a blank line (skipped by the
    readers), which keeps ``reader.line_num`` equal to the file's line numbers."""
    for _, line in iter_lines(path, ""):
        if isinstance(line, DataError):
            if on_error is None:
                raise line
            on_error(line)
            line = "\n"
        yield line


# CSV injection (OWASP): a cell starting with one of these is run as a formula by
# spreadsheets ("=cmd|' /C calc'!A0"), so writers prefix it with "'", which spreadsheets
# show as plain text. Every such cell is escaped, "-5 degrees" and "+44 20..." included:
# telling a number from a formula is what the attack exploits. Cells that already start
# with quotes before such a character get one more quote, so the reader, which removes
# one quote exactly there, gives back every text unchanged (a lossless round trip).
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def escape_cell(value: Any) -> Any:
    """A CSV cell made safe to open in a spreadsheet (see ``_FORMULA``); others unchanged."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """Undo ``escape_cell``: one leading "'" removed where quotes precede a formula start.
    A hand-written cell such as "'=A1" therefore reads as "=A1", as a spreadsheet shows it."""
    if value.startswith("'") and _FORMULA.match(value, 1):
        return value[1:]
    return value


def prepare_output(path: str | Path, folder: bool = False) -> Path:
    """Make an output path writable: create missing parent folders (as every writer of
    the CLI does), refuse a folder where a file is wanted, or a file where a folder is."""
    path = Path(path)
    target = path if folder else path.parent
    if folder and path.exists() and not path.is_dir():
        raise DataError("is a file, expected a folder for the output", str(path))
    if not folder and path.is_dir():
        raise DataError("is a folder; give a file name for the output", str(path))
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError("cannot create the output's folder: part of the path is a file",
                        str(target)) from None
    except OSError as exc:
        raise DataError(f"cannot create the output's folder: {exc.strerror}", str(target)) \
            from None
    return path
