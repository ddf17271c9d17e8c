"""Model FLOPs utilisation (MFU): the FLOPs training does per second over the machine's
matmul peak for the number format in use, so a throughput figure says how close a run is
to what the cores can do, not just how fast it was on this machine.

The FLOPs of the first training step are counted exactly by torch's ``FlopCounterMode``
(matmuls, attention and convolutions, forward and backward, as autograd really runs them:
a frozen weight gets no weight gradient, so a LoRA step counts about 4 FLOPs per parameter
and token, full fine-tuning about 6). Later steps are scaled by their token positions
(padded ``input_ids``), which keeps the count free: the counter's dispatch hook costs a few
milliseconds per step. The optimizer's element-wise update is left out, as in the usual
MFU definition (Chowdhery et al., 2022).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from .precision import DTYPES, matmul_gflops

# The 512² probe that picks the precision stays below the cores' peak (measured on the AMX
# machine, 2 threads: 512² ran at 317 GFLOP/s fp32 and 1,426 bf16, 2048² at 436 and 3,339),
# which would inflate MFU up to 2.3x; the peak is therefore timed at 2048², unless that would take over half a second (bf16
# emulated on an AVX2 CPU runs at ~0.4 GFLOP/s: 40 s per 2048² product).
PEAK_SIZE = {"cpu": 2048, "cuda": 8192}  # a GPU needs larger products to reach its peak
PEAK_PROBE_SECONDS = 0.5
# A peak timed while other jobs share the cores reads low and inflates MFU (a run started
# beside another read 1,014 GFLOP/s against ~3,300 alone, MFU 0.141). Runs this long time
# it again at the end and keep the better figure; shorter ones timed it moments ago.
RETIME_AFTER_SECONDS = 60.0


@functools.cache
def matmul_peak(precision: str, device: str = "cpu") -> float:
    """GFLOP/s of the best large matmul in ``precision`` on ``device``, once per process."""
    dtype = DTYPES[precision]
    small, size = matmul_gflops(dtype, device), PEAK_SIZE.get(device, PEAK_SIZE["cpu"])
    if 2 * size ** 3 / (small * 1e9) > PEAK_PROBE_SECONDS:
        return small
    return max(small, matmul_gflops(dtype, device, size=size))


def best_peak(precision: str, device: str = "cpu") -> float:
    """The peak timed again now, or the first timing if that was higher."""
    return max(matmul_peak(precision, device), matmul_peak.__wrapped__(precision, device))


def batch_positions(batch: dict[str, torch.Tensor]) -> int:
    """Token positions a batch feeds the model (padding included: the model computes it)."""
    ids = batch.get("input_ids")
    return int(ids.numel()) if ids is not None else 0


class FlopMeter:
    """Counts the FLOPs of training steps: the first exactly, the rest by their positions."""

    def __init__(self, precision: str, device: str = "cpu",
                 per_position: float | None = None):
        self.precision, self.device = precision, device
        self.per_position = per_position  # FLOPs per token position; None: not counted yet

    @contextlib.contextmanager
    def step(self, positions: int) -> Iterator[None]:
        """Wrap one step's forward and backward; counts it if no step was counted yet."""
        if self.per_position is not None or positions == 0:
            yield
            return
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            yield
        self.per_position = counter.get_total_flops() / positions

    def flops(self, positions: int) -> float:
        """FLOPs of a step over ``positions`` token positions (0 before any was counted)."""
        return (self.per_position or 0.0) * positions

    def mfu(self, flops: float, seconds: float) -> float | None:
        """Achieved FLOP/s over the measured peak, or None when nothing was counted."""
        if flops <= 0 or seconds <= 0:
            return None
        return flops / seconds / (matmul_peak(self.precision, self.device) * 1e9)

    def summary(self, flops: float, seconds: float) -> dict[str, float | None]:
        """The run summary's figures: MFU, achieved and peak GFLOP/s, for the dtype used."""
        if flops <= 0 or seconds <= 0:
            return {"mfu": None}
        peak = (best_peak(self.precision, self.device) if seconds >= RETIME_AFTER_SECONDS
                else matmul_peak(self.precision, self.device))
        return {"mfu": significant(flops / seconds / (peak * 1e9)),
                "train_flops": significant(flops, 6),
                "achieved_gflops": significant(flops / seconds / 1e9),
                "peak_gflops": round(peak, 1)}


def significant(value: float | None, digits: int = 3) -> float | None:
    """``value`` to ``digits`` significant figures (a tiny test model's MFU is ~1e-4)."""
    return None if value is None else float(f"{value:.{digits}g}")
