"""What every benchmark prints beside its figures: the CPU model and the flags that decide
bf16 speed (machines differ between runs, so speeds compare only within one run), the
precision dialogtune's training picks here (``train.precision=auto``) and the thread count.

Importing it also makes SIGTERM end the benchmark's child processes before the benchmark
itself: a killed driver used to leave its ``dialogtune train`` child running, orphaned,
outside the benchmark lock, where it slowed the next runs 4x (session 11).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from dialogtune.precision import cpu_description, resolve_precision


def child_pids(parent: int | None = None, proc: Path = Path("/proc")) -> list[int]:
    """The processes whose parent is ``parent`` (default: this one), read from /proc."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in proc.iterdir() if proc.exists() else []:
        try:  # "pid (name) state ppid ...": the name may hold spaces, so split after ')'
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _end_children(signum, frame) -> None:
    for pid in child_pids():
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _end_children)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    return str(cpu_description()["model"])


def machine(threads: int) -> dict:
    description = cpu_description()
    return {"cpu": description["model"], "cpu_flags": description["flags"],
            "auto_precision": resolve_precision("auto"), "threads": threads}
