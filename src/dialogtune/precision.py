"""Which number format the matrix products run in: float32, or bfloat16 where it pays.

Machines differ from run to run: one 2-core machine here was an AMD EPYC with AVX2 (about
100 GFLOP/s float32 and no fast bfloat16: a bf16 matmul there is slower than float32),
another an Intel Xeon with AMX (360-410 GFLOP/s float32, about 2,500 bf16). On the second a
SmolLM2 LoRA step ran at 248 tokens/s in float32 and 389 under bf16 autocast (issue 14).
So ``auto`` does not guess from the CPU's name or flags: it times one matmul in each format
at start and takes bf16 only where it is clearly faster. Trained parameters stay float32
(autocast casts a copy for each product), so the optimizer's updates are not rounded away.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["fp32", "bf16"]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# A training step is not all matmul: autocast's casts took 12 % of a bf16 LoRA step and the
# attention backward gains less (profiled on the AMX machine, where matmuls run ~7x faster
# and the whole step 1.57x). Below 2x on the matmul alone the step would gain little or lose.
MIN_BF16_SPEEDUP = 2.0
# 512² keeps the probe in milliseconds where bf16 is fast; where it is not, the flags below
# skip it (a 1024² bf16 matmul on the AVX2 machine ran at 0.44 GFLOP/s: 5 s per product).
PROBE_SIZE = 512
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
CPU_FLAGS_SHOWN = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def matmul_gflops(dtype: torch.dtype, device: str = "cpu", size: int = PROBE_SIZE,
                  repeats: int = 3) -> float:
    """Best of ``repeats`` timed ``size``² matmuls in ``dtype``, in GFLOP/s (after one warm-up)."""
    # A generator of its own: drawing from the global one would shift every later random draw
    # (dropout, the head's start) in runs that probe and not in those that reuse the cached
    # figures, and a resumed run would no longer end where the unbroken one does.
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=generator).to(dtype)
    b = torch.randn(size, size, device=device, generator=generator).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / max(best, 1e-9) / 1e9


@functools.cache
def measured_peaks(device: str = "cpu") -> dict[str, float]:
    """GFLOP/s of a float32 and a bfloat16 matmul on ``device``, measured once per process."""
    return {name: round(matmul_gflops(dtype, device), 1) for name, dtype in DTYPES.items()}


def resolve_precision(requested: str, device: str = "cpu") -> Precision:
    """``fp32`` or ``bf16`` as asked; ``auto``: bf16 where its matmul is ≥ 2x float32's here."""
    if requested in DTYPES:
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, not {requested!r}")
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_bf16_supported()):
        return "fp32"  # other accelerators: not measured here
    if device == "cpu" and not _cpu_may_have_fast_bf16(cpu_description()):
        return "fp32"
    peaks = measured_peaks(device)
    return "bf16" if peaks["bf16"] >= MIN_BF16_SPEEDUP * peaks["fp32"] else "fp32"


def cast_for_inference(model: torch.nn.Module, requested: str) -> Precision:
    """Cast ``model``'s floating weights to bf16 where ``requested`` resolves to it on the
    model's device (``auto``: bf16 where its matmul is ≥ 2x float32's); the precision used.

    Inference casts the weights themselves, not each product as training's autocast does:
    a decoding step multiplies every weight once, and casting them all on every step would
    cost more than the product gains. Measured on the AMX machine (SmolLM2-135M, 1 thread,
    8 prompts of ~40 tokens x 16 greedy tokens; ``benchmarks/serve_load.py`` has the served
    figures): a prompt's prefill 179 -> 95 ms, a decoding step of 8 sequences 127 -> 72 ms;
    the one-sequence step is bound by per-operation overhead (61 vs 64 ms). Held-out
    perplexity of the example dialogues moved 17.834 -> 17.818 (-0.09 %).
    """
    from .models.devices import model_device

    precision = resolve_precision(requested, model_device(model).type)
    if precision == "bf16":
        model.to(torch.bfloat16)
    return precision


def autocast(precision: str, device: str = "cpu") -> contextlib.AbstractContextManager:
    """The context the forward pass runs in: bf16 autocast, or nothing for float32."""
    if precision == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """The CPU's model name and the vector / matrix flags that decide bf16 speed (Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return {"model": "unknown", "flags": []}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", "unknown"),
            "flags": [flag for flag in CPU_FLAGS_SHOWN if flag in flags]}


def _cpu_may_have_fast_bf16(description: dict[str, object]) -> bool:
    """False for an x86 CPU without a bf16 instruction (emulated bf16 is far slower)."""
    flags = set(description["flags"])  # type: ignore[arg-type]
    return not ("avx2" in flags and not flags & BF16_FLAGS)


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
