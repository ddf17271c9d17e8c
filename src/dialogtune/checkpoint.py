"""Atomic, durable saving and verified loading of weights and resumable training state.

A checkpoint is a folder written under a temporary name and swapped in by rename, so a
crash leaves either the previous checkpoint or the new one, never half of one. Its files are
fsynced before the rename (see ``atomic``), and ``manifest.json``, written last, records
each file's size and SHA-256: loading verifies them and falls back to the previous
checkpoint (kept as ``checkpoint.old``) when the newest is damaged (a truncated or missing
file after a disk fault or a copy cut short).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_path, replace_durably, temporary_folder
from .runs.layout import CheckpointDir

log = logging.getLogger("dialogtune")
MANIFEST = CheckpointDir.MANIFEST


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters a strategy trains: all a run needs on top of the base model."""
    return {name: param.detach().contiguous().clone()
            for name, param in model.named_parameters() if param.requires_grad}


def save_tensors(tensors: dict[str, torch.Tensor], path: Path,
                 metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically and durably (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata=metadata)


def load_trainable(model: nn.Module, path: Path) -> None:
    """Load saved trainable weights; every saved tensor must find its parameter."""
    state = load_file(str(path))
    missing = set(state) - {name for name, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"{path}: {len(missing)} saved tensors do not match the model "
                         f"(e.g. {sorted(missing)[0]}); was it trained with another strategy?")
    model.load_state_dict(state, strict=False)


def write_json_atomic(data: Any, path: Path) -> None:
    """Replace a JSON file atomically and durably; on failure the old file stays."""
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    progress: dict[str, Any], rng_states: torch.Tensor | None = None) -> None:
    """Write weights, optimizer moments, RNG state and loop progress as one atomic folder.

    ``rng_states`` holds one row per process (each rank's dropout draws differ); without it
    the calling process's state is saved as the only row. The checkpoint it replaces is
    kept as ``FOLDER.old``: the fallback should this one later fail verification.
    """
    staging = CheckpointDir(temporary_folder(folder))
    try:
        save_tensors(trainable_state(model), staging.weights)
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        tensors["__torch_rng__"] = (rng_states if rng_states is not None
                                    else torch.get_rng_state().unsqueeze(0))
        save_tensors(tensors, staging.optimizer)
        write_json_atomic({"progress": progress, "param_groups": groups}, staging.state)
        write_json_atomic(_manifest(staging.path), staging.manifest)  # last: says "complete"
    except BaseException:  # a failed write (disk full, interrupt) leaves no half folder behind
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    previous = CheckpointDir(folder).previous.path
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    replace_durably(staging.path, folder)  # also makes the rename to .old durable (same folder)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()  # hashlib.file_digest is Python 3.11+; 3.10 is supported
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, Any]:
    # Hashing reads the files back from the page cache: measured 1.1 GB/s here, about
    # 0.25 s for a fully fine-tuned 22M-parameter encoder (weights + two Adam moments).
    return {"files": {path.name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
                      for path in sorted(folder.iterdir()) if path.name != MANIFEST}}


def checkpoint_problem(folder: Path) -> str | None:
    """What is wrong with the checkpoint in ``folder``, or None when it verifies."""
    checkpoint = CheckpointDir(folder)
    if not checkpoint.manifest.exists():
        # checkpoints written before manifests: complete when state.json made it
        return None if checkpoint.state.exists() else f"no {MANIFEST}"
    try:
        files = json.loads(checkpoint.manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MANIFEST} ({exc})"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, {expected['bytes']} were written"
        if file_sha256(path) != expected["sha256"]:
            return f"{name} does not match the checksum it was written with"
    return None


def find_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that verifies: ``folder``, else the previous ``folder.old``.

    ``.old`` alone also remains after a crash between the two renames of a save.
    """
    for candidate in (folder, CheckpointDir(folder).previous.path):
        if not candidate.exists():
            continue
        problem = checkpoint_problem(candidate)
        if problem is None:
            return candidate
        log.warning("checkpoint %s is damaged (%s); trying the previous one", candidate, problem)
    return None


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    rank: int = 0) -> dict[str, Any]:
    """Restore a checkpoint into ``model`` and ``optimizer``; returns the loop progress.

    Process ``rank`` takes its own RNG row; a run resumed on more processes than it was
    saved from reuses rows (still deterministic, no longer identical to an unbroken run).
    """
    checkpoint = CheckpointDir(folder)
    load_trainable(model, checkpoint.weights)
    meta = json.loads(checkpoint.state.read_text(encoding="utf-8"))
    tensors = load_file(str(checkpoint.optimizer))
    rng = tensors.pop("__torch_rng__")
    if rng.dim() == 2:  # one row per process (a 1-D state: checkpoints from before rows)
        # clone: set_rng_state on a row view (offset into shared storage) segfaulted here
        rng = rng[rank % rng.shape[0]].clone()
    torch.set_rng_state(rng)
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["param_groups"]))
    return meta["progress"]
