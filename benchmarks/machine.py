"""What every benchmark prints beside its figures: the CPU model (machines differ between
runs, so speeds compare only within one run) and the thread count."""

from __future__ import annotations

from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine(threads: int) -> dict:
    return {"cpu": cpu_model(), "threads": threads}
