"""Every atomic writer fsyncs the new file before its rename and the folder after it.

Without the fsyncs a power loss can leave the new name pointing at empty or truncated
data (the rename reached the disk, the bytes did not). The tests record the calls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dialogtune.atomic import remove_temporaries, write_text_atomic
from dialogtune.checkpoint import save_checkpoint, save_tensors, write_json_atomic
from dialogtune.config import RunConfig, save_config
from dialogtune.data.transform.writers import write_csv, write_json_array, write_jsonl


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    """("fsync", path) and ("replace", target) in the order they happen."""
    seen: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(source, target):
        seen.append(("replace", str(source)))
        real_replace(source, target)
        seen.append(("replaced", str(Path(target).resolve())))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def assert_durable(calls: list[tuple[str, str]], target: Path) -> None:
    """The temporary behind ``target`` was fsynced before the rename, its folder after."""
    target = target.resolve()
    done = calls.index(("replaced", str(target)))
    temp = calls[done - 1][1]
    assert calls[done - 1][0] == "replace" and Path(temp).parent == target.parent
    assert ("fsync", temp) in calls[:done - 1], f"{target.name}: data not fsynced before rename"
    assert ("fsync", str(target.parent)) in calls[done + 1:], f"{target.name}: folder not fsynced"


WRITERS = {
    "json": lambda p: write_json_atomic({"a": 1}, p),
    "text": lambda p: write_text_atomic(p, "x\n"),
    "tensors": lambda p: save_tensors({"w": torch.ones(2)}, p),
    "config": lambda p: save_config(RunConfig(), p),
    "csv": lambda p: write_csv(p, ["text", "label"], [["a", "b"]]),
    "jsonl": lambda p: write_jsonl(p, [{"a": 1}]),
    "json_array": lambda p: write_json_array(p, [{"a": 1}]),
}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_atomic_writer_fsyncs_file_and_folder(kind, calls, tmp_path):
    target = tmp_path / "sub" / f"out.{kind}"
    WRITERS[kind](target)
    assert target.exists()
    assert_durable(calls, target)
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
def test_checkpoint_folder_is_fsynced_before_its_rename(calls, tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 1})
    assert_durable(calls, folder)
    staging = calls[calls.index(("replaced", str(folder.resolve()))) - 1][1]
    before = calls[:calls.index(("replace", staging))]
    for name in ("model.safetensors", "optimizer.safetensors", "state.json", "manifest.json"):
        assert ("fsync", f"{staging}/{name}") in before, name


def test_killed_writers_temporaries_are_removed(tmp_path):
    (tmp_path / ".model.safetensors.abc.tmp").write_bytes(b"half")
    (tmp_path / ".checkpoint.xyz.tmp").mkdir()
    (tmp_path / ".checkpoint.xyz.tmp" / "state.json").write_text("{")
    (tmp_path / "keep.tmp").write_text("user file")
    assert sorted(remove_temporaries(tmp_path)) == [".checkpoint.xyz.tmp",
                                                    ".model.safetensors.abc.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tmp"]
