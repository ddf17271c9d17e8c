"""How much of the machine a job should use."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path | None = None) -> int | None:
    """Whole CPUs allowed by a container's CPU quota (cgroup v2 or v1), None when unlimited.

    Containers with a CPU limit still report the host's cores through ``os.cpu_count()`` and
    often through the affinity mask too; sizing thread pools from those oversubscribes the
    quota and every step waits on throttled threads.
    """
    root = root or CGROUP_ROOT
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # v2: "max 100000"
    except (OSError, ValueError):
        try:  # v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return max(1, math.ceil(quota_us / period_us))


def usable_cores() -> int:
    """Cores this process may run on: the affinity mask, capped by a container CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit else cores


def available_threads() -> int:
    """Cores not already busy (1-minute load average), at least one.

    With other jobs on the cores, two OpenMP threads wait on each other at every operation:
    measured here, a MiniLM training step took 5.5 s with 2 threads beside another job and
    0.43 s with 1 thread (0.31 s with 2 threads on an idle machine).
    """
    cores = usable_cores()
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))
