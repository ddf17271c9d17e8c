"""What a run was started with (settings and data), to refuse resuming it with other ones.

A resumed run continues the optimizer, schedule and data order of the checkpoint; with a
changed learning rate or training file it would silently become a mix of two runs that
neither config describes. The fingerprint is stored in each checkpoint and compared on
``--resume`` before anything is written (``config.yaml`` included).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import DialogtuneError
from .layout import CheckpointDir

# Settings that may change between attempts without changing what is trained: where the
# run goes, where the data lies (its content is fingerprinted instead), how many threads
# compute it and how often it is checkpointed.
# model.add_tokens follows from the training data, whose digest is in the fingerprint
RESUMABLE_CHANGES = {"output", "data.train", "data.eval", "data.tools", "data.force",
                     "model.add_tokens", "train.num_threads", "train.save_every_steps"}
DATA_FIELDS = ("data.train", "data.eval", "data.tools")


def run_fingerprint(cfg: RunConfig) -> dict[str, Any]:
    """The resolved settings (flattened) and a SHA-256 of each data file or folder."""
    settings = {key: value for key, value in _flatten(cfg.model_dump(mode="json")).items()
                if key not in RESUMABLE_CHANGES}
    data = {}
    for key in DATA_FIELDS:
        path = getattr(cfg.data, key.split(".")[1])
        if path:
            data[key] = content_digest(Path(path))
    return {"config": settings, "data": data}


def content_digest(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's relative file names and contents (a saved
    ``datasets`` folder); None when the path does not exist (the reader reports it)."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def check_resume(checkpoint: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse (one line) when a checkpoint of this run was started with other settings/data.

    Checkpoints from before fingerprints, or too damaged to read, are left to
    ``find_checkpoint`` (which verifies them).
    """
    for candidate in (checkpoint, CheckpointDir(checkpoint).previous.path):
        try:
            state = json.loads(CheckpointDir(candidate).state.read_text(encoding="utf-8"))
            saved = state["progress"].get("fingerprint")
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        problem = saved and difference(saved, fingerprint)
        if problem:
            raise DialogtuneError(
                f"{candidate}: cannot resume: {problem} since this run started; resume with "
                "the settings and data it was started with, or train into a new --output")


def difference(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first difference between two fingerprints, in words; None when equal."""
    old, new = saved.get("config", {}), current.get("config", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key} changed from {old.get(key)!r} to {new.get(key)!r}"
    old, new = saved.get("data", {}), current.get("data", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"the content of {key} changed"
    return None


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
