"""Atomic saving and loading of weights and resumable training state, safetensors only.

A checkpoint is a folder written under a temporary name and swapped in by rename, so a
crash leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "model.safetensors"


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters a strategy trains: all a run needs on top of the base model."""
    return {name: param.detach().contiguous().clone()
            for name, param in model.named_parameters() if param.requires_grad}


def save_tensors(tensors: dict[str, torch.Tensor], path: Path,
                 metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp,
                  metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_trainable(model: nn.Module, path: Path) -> None:
    """Load saved trainable weights; every saved tensor must find its parameter."""
    state = load_file(str(path))
    missing = set(state) - {name for name, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"{path}: {len(missing)} saved tensors do not match the model "
                         f"(e.g. {sorted(missing)[0]}); was it trained with another strategy?")
    model.load_state_dict(state, strict=False)


def write_json_atomic(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    the calling process's state is saved as the only row.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_tensors(trainable_state(model), staging / WEIGHTS)
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        tensors["__torch_rng__"] = (rng_states if rng_states is not None
                                    else torch.get_rng_state().unsqueeze(0))
        save_tensors(tensors, staging / "optimizer.safetensors")
        write_json_atomic({"progress": progress, "param_groups": groups}, staging / "state.json")
    except BaseException:  # a failed write (disk full, interrupt) leaves no half folder behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = folder.with_name(folder.name + ".old")
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    os.replace(staging, folder)
    shutil.rmtree(previous, ignore_errors=True)


def find_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint, also after a crash between the two renames."""
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    rank: int = 0) -> dict[str, Any]:
    """Restore a checkpoint into ``model`` and ``optimizer``; returns the loop progress.

    Process ``rank`` takes its own RNG row; a run resumed on more processes than it was
    saved from reuses rows (still deterministic, no longer identical to an unbroken run).
    """
    load_trainable(model, folder / WEIGHTS)
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    rng = tensors.pop("__torch_rng__")
    if rng.dim() == 2:  # one row per process (a 1-D state: checkpoints from before rows)
        # clone: set_rng_state on a row view (offset into shared storage) segfaulted here
        rng = rng[rank % rng.shape[0]].clone()
    torch.set_rng_state(rng)
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["param_groups"]))
    return meta["progress"]
