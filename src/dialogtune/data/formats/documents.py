"""Raw domain documents: a .txt / .md file, or a folder of them read recursively.

Each file is one document; a file that is empty or not UTF-8 is a problem naming that
file (and line), so a lenient read lists every such file of a folder.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..files import read_text
from ..records import Document
from .base import Items, Loaded, ReadOptions

DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown")


def is_document_path(path: str | Path) -> bool:
    """True for a folder or a .txt/.md file: the inputs ``--task pretrain`` reads."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in DOCUMENT_SUFFIXES


def document_files(path: str | Path) -> list[Path]:
    """The document files under ``path`` (recursively, sorted), or ``path`` itself."""
    path = Path(path)
    if not path.exists():
        raise DataError("file or folder not found", str(path))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        if not files:
            raise DataError(f"no documents ({', '.join(DOCUMENT_SUFFIXES)}) in this folder",
                            str(path))
        return files
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise DataError(f"expected a document file ({', '.join(DOCUMENT_SUFFIXES)}) or a "
                        "folder of them", str(path))
    return [path]


def read_document_files(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every non-empty document; an empty file is a problem naming it (likely a mistake)."""
    for file in document_files(out.path):
        try:
            text = read_text(file)  # UTF-8 errors name the line
        except DataError as exc:
            out.problem_from(exc)
            continue
        if not text.strip():
            out.problem(1, "document is empty", file=str(file))
            continue
        out.keep(Document(text, str(file)), str(file))
