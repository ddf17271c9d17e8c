"""Durable atomic writes: write a temporary sibling, fsync it, rename it, fsync the folder.

The rename alone makes a write atomic against a crash of the process; it does not survive
a power loss or a kernel crash: without ``fsync`` the rename can reach the disk before the
data, leaving an empty or truncated file under the final name. Every writer of run files,
checkpoints, weights and data files goes through :func:`replace_durably` so none forgets.

Temporary names are ``.NAME.RANDOM.tmp`` siblings of the target (same file system, so the
rename is atomic); :func:`remove_temporaries` clears those a killed process left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_path(path: str | Path) -> None:
    """Flush a file's data, or a folder's entries (names created, renamed), to the disk."""
    if os.name != "posix" and Path(path).is_dir():
        return  # Windows cannot open a folder for fsync; its renames are journaled
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder`` and every folder, deepest first."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(root)


def replace_durably(source: str | Path, target: str | Path) -> None:
    """Move a finished temporary file or folder onto ``target`` so that it survives a crash.

    The data is flushed before the rename (a reader after a power loss never sees the new
    name with old or missing bytes) and the containing folder after it (the rename itself).
    """
    source, target = Path(source), Path(target)
    if source.is_dir():
        fsync_tree(source)
    else:
        fsync_path(source)
    os.replace(source, target)
    fsync_path(target.parent)


def temporary_name(path: Path) -> Path:
    """A fresh, unused temporary sibling of ``path`` (created empty; the caller fills it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` durably.

    On an exception the temporary is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        replace_durably(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace a text file (UTF-8) atomically and durably."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def temporary_folder(path: Path) -> Path:
    """A fresh temporary sibling folder of ``path``, to fill and then swap in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent))


def remove_temporaries(folder: Path) -> list[str]:
    """Delete the ``.NAME.RANDOM.tmp`` files and folders a killed writer left in ``folder``.

    Only one process writes a run directory, so any found when it starts are stale.
    """
    removed = []
    for entry in folder.glob(f".*{TMP_SUFFIX}") if folder.is_dir() else ():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
