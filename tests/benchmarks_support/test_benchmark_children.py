"""Benchmarks end their child processes when they are terminated (``benchmarks/machine.py``):
a killed driver once left its ``dialogtune train`` child running outside the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from helpers import ROOT

DRIVER = """
import subprocess, sys, time
sys.path.insert(0, {benchmarks!r})
import machine  # installs the SIGTERM handler
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone
    except OSError:
        return False


def test_terminating_a_benchmark_ends_its_children():
    code = DRIVER.format(benchmarks=str(ROOT / "benchmarks"))
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    child = int(driver.stdout.readline())
    assert alive(child)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)


def test_child_pids_reads_parents_from_proc(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    handler = signal.getsignal(signal.SIGTERM)
    try:
        from machine import child_pids
    finally:  # importing it installs the benchmarks' SIGTERM handler: not pytest's business
        sys.path.remove(str(ROOT / "benchmarks"))
        signal.signal(signal.SIGTERM, handler)
    for pid, stat in {"11": "11 (a b) S 7 1", "12": "12 (x) S 8 1", "13": "13 (y)) S 7 1"}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(stat)
    (tmp_path / "self").mkdir()  # not a process number
    assert sorted(child_pids(7, tmp_path)) == [11, 13]
