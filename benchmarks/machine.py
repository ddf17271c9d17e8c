"""What every benchmark prints beside its figures: the CPU model and the flags that decide
bf16 speed (machines differ between runs, so speeds compare only within one run), the
precision dialogtune's training picks here (``train.precision=auto``) and the thread count."""

from __future__ import annotations

from dialogtune.precision import cpu_description, resolve_precision


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    return str(cpu_description()["model"])


def machine(threads: int) -> dict:
    description = cpu_description()
    return {"cpu": description["model"], "cpu_flags": description["flags"],
            "auto_precision": resolve_precision("auto"), "threads": threads}
