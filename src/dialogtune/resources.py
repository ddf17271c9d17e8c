"""How much of the machine a job should use."""

from __future__ import annotations

import os


def available_threads() -> int:
    """Cores not already busy (1-minute load average), at least one.

    With other jobs on the cores, two OpenMP threads wait on each other at every operation:
    measured here, a MiniLM training step took 5.5 s with 2 threads beside another job and
    0.43 s with 1 thread (0.31 s with 2 threads on an idle machine).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))
