"""A real crash: `dialogtune train` killed with SIGKILL after its first checkpoint resumes
with `train --resume` to exactly the weights of an uninterrupted run.

In-process interrupts (test_checkpoint_resume) unwind through ``finally`` blocks and
``except`` clauses; SIGKILL does not: half-written temporaries stay, nothing is flushed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dialogtune
from dialogtune.tasks.intent import train_intent

from test_checkpoint_resume import assert_same_tensors, run_config

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")]

# 21 training examples in batches of 4: 6 steps an epoch, 60 steps, a checkpoint after
# every step; patience high so that every run trains all 60 steps.
SETTINGS = ("train.batch_size=4", "train.epochs=10", "train.min_steps=0",
            "train.save_every_steps=1", "train.patience=100", "train.num_threads=1")
FIRST_CHECKPOINT_TIMEOUT = 60.0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dialogtune.cli", *args]


def cli_env() -> dict[str, str]:
    """This checkout's sources first, offline, one thread (the shared test machine)."""
    src = str(Path(dialogtune.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def kill_after_first_checkpoint(command: list[str], run: Path) -> int:
    """Start ``command``, SIGKILL it once a checkpoint is on disk; returns its exit code."""
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + FIRST_CHECKPOINT_TIMEOUT
    try:
        # a checkpoint folder appears (by rename) only once complete
        while not (run / "checkpoint" / "state.json").exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    return process.returncode


def test_sigkilled_training_resumes_to_identical_weights(tiny_bert, intent_csv, tmp_path):
    unbroken, crashed = tmp_path / "unbroken", tmp_path / "crashed"
    train_intent(run_config(unbroken, intent_csv, tiny_bert, *SETTINGS))

    command = cli("train", "--data", str(intent_csv), "--model", tiny_bert,
                  "--output", str(crashed), *[a for s in SETTINGS for a in ("--set", s)])
    assert kill_after_first_checkpoint(command, crashed) == -signal.SIGKILL
    assert not (crashed / "model.safetensors").exists(), "finished before the kill"

    resumed = subprocess.run(cli("train", "--resume", "--output", str(crashed)), env=cli_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name in ("model.safetensors", "best.safetensors", "checkpoint/model.safetensors",
                 "checkpoint/optimizer.safetensors"):
        assert_same_tensors(unbroken / name, crashed / name)
    assert not [p.name for p in crashed.iterdir() if p.name.startswith(".")]
