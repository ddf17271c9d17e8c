"""Reading text files safely: UTF-8 errors located by line, missing files named."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError


def read_text(path: str | Path) -> str:
    """Read a UTF-8 file (BOM allowed) or raise a DataError naming the offending line."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", str(path))
    if path.is_dir():
        raise DataError("is a folder, expected a file", str(path))
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8",
                        str(path), line) from None


def parse_json(raw: str, path: str | Path, line: int | None):
    """``json.loads`` whose failures (bad syntax, absurd nesting) become located DataErrors."""
    import json

    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        at = line if line is not None else exc.lineno
        raise DataError(f"malformed JSON: {exc.msg}", str(path), at) from None
    except RecursionError:
        raise DataError("malformed JSON: nested too deeply", str(path), line) from None


def jsonl_lines(text: str):
    """(line number, text) of non-blank JSONL lines.

    Only '\\n' ends a record: ``str.splitlines`` would also split at U+2028, U+0085 and
    others, which JSON allows unescaped inside strings, and shift every later line number.
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.strip():
            yield number, raw
