"""How much of the machine a job should use."""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_STAT = Path("/proc/stat")


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


def available_threads(sample_seconds: float = 0.2) -> int:
    """Cores that other processes leave idle now, at least one.

    With other jobs on the cores, two OpenMP threads wait on each other at every operation:
    measured here, a MiniLM training step took 5.5 s with 2 threads beside another job and
    0.43 s with 1 thread (0.31 s with 2 threads on an idle machine). The load is sampled over
    ``sample_seconds`` rather than read from the 1-minute load average, which still counts
    the user's previous command: run back to back on an idle 2-core machine, the second
    ``train`` got 1 thread and ran at half speed.
    """
    cores = usable_cores()
    before = read_cpu_sample()
    if before is None:  # no /proc/stat: the load average is all there is
        busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
        return max(1, min(cores, cores - busy))
    time.sleep(sample_seconds)
    after = read_cpu_sample()
    return threads_beside(others_busy_cores(before, after), after.cores, cores) if after else cores


def threads_from_environment() -> int | None:
    """``OMP_NUM_THREADS`` when set to a positive number: the user's or the launcher's choice
    (torchrun sets 1 for several processes a machine), kept over any measurement."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def threads_beside(others_busy: float, cores_seen: int, usable: int) -> int:
    """Threads to run when other processes keep ``others_busy`` of the ``cores_seen`` cores
    (the affinity mask: in a container with a CPU quota, more than it may ``usable``) busy."""
    return max(1, min(usable, cores_seen - round(others_busy)))


@dataclass(frozen=True)
class CpuSample:
    """Busy and total CPU time on the cores this process may use (all processes), and this
    process's own CPU time, at one moment; two samples give the others' load between them."""

    busy_seconds: float
    total_seconds: float
    own_seconds: float
    cores: int


def read_cpu_sample(stat: Path = PROC_STAT, cores: set[int] | None = None) -> CpuSample | None:
    """Sum the per-CPU lines of ``/proc/stat`` for ``cores`` (default: the affinity mask)."""
    if cores is None:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores):
            continue
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        ticks = [int(value) for value in fields[:8]]
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    if not total:
        return None
    hertz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return CpuSample(busy / hertz, total / hertz, time.process_time(), len(cores))


def others_busy_cores(before: CpuSample, after: CpuSample) -> float:
    """Cores other processes kept busy between two samples: all busy time minus our own."""
    wall = (after.total_seconds - before.total_seconds) / max(1, after.cores)
    if wall <= 0:
        return 0.0
    others = (after.busy_seconds - before.busy_seconds) - (after.own_seconds - before.own_seconds)
    return max(0.0, others / wall)


class ThreadGovernor:
    """A training-step callback that re-checks the others' load every ``every_seconds`` and
    sets torch's thread count to what they leave: a job that starts beside a long run makes
    it step down to one thread (instead of both slowing 5-20x), and it steps back up after.
    ``decide`` alone (the server's generation threads) keeps the count without setting it."""

    def __init__(self, every_seconds: float = 30.0, cores: int | None = None,
                 sample=read_cpu_sample, set_threads=None, clock=time.monotonic):
        import torch

        self.every, self.cores, self.sample, self.clock = every_seconds, cores, sample, clock
        self.set_threads = set_threads or torch.set_num_threads
        self.last, self.checked_at = sample(), clock()
        self.count = cores or usable_cores()  # until the first look: nobody else is busy
        self._lock = threading.Lock()

    def decide(self) -> int | None:
        """The thread count the others' load leaves, re-measured when ``every_seconds`` have
        passed since the last look (None when not re-measured now)."""
        with self._lock:
            if self.last is None or self.clock() - self.checked_at < self.every:
                return None
            now = self.sample()
            if now is None:
                return None
            self.count = threads_beside(others_busy_cores(self.last, now), now.cores,
                                        self.cores or usable_cores())
            self.last, self.checked_at = now, self.clock()
            return self.count

    def __call__(self, step: int) -> None:
        if (count := self.decide()) is not None:
            self.set_threads(count)
