"""A few real optimizer steps of one (model, strategy, batch size) on the user's data, timed.

The steps run through the task's own training (``pipeline.train_run``, capped by
``train.max_steps``), so they load the same model, read and split the same data, pick the
threads training picks and pay the same validation and writes: what is measured is what a
``train`` run would do, only shorter.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import RunConfig
from ..train import EpochEnd

WARMUP_STEPS = 1  # the first step pays one-time costs (allocations, kernel choice)


@dataclass(frozen=True)
class Measurement:
    """Seconds one candidate spends on each part of a run, measured on this machine."""

    model: str
    strategy: str
    batch_size: int
    seconds_per_step: float  # mean over the timed steps (random batches of mixed lengths)
    steps_timed: int
    startup_seconds: float  # model load, data reading and encoding, the first step's excess
    epoch_end_seconds: float  # one epoch's validation, best-weights save and checkpoint
    finish_seconds: float  # the run's files at the end (summary, calibration, plot, weights)
    steps_per_epoch: int
    threads: int

    def to_json(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value
                for key, value in asdict(self).items()}


class StepClock:
    """A training callback that notes when each step and each epoch end finished."""

    def __init__(self):
        self.steps: list[tuple[int, float]] = []
        self.epoch_ends: list[tuple[float, EpochEnd]] = []
        self.threads = 0

    def __call__(self, step: int) -> None:
        import torch

        self.steps.append((step, time.perf_counter()))
        self.threads = torch.get_num_threads()

    def epoch_end(self, end: EpochEnd) -> None:
        self.epoch_ends.append((time.perf_counter(), end))

    def step_seconds(self) -> list[float]:
        """Durations of the steps after the warm-up; a step that follows an epoch end is
        timed from that end, so validation never counts as training."""
        durations, previous = [], None
        marks = [at for at, _ in self.epoch_ends]
        for step, at in self.steps:
            if previous is not None and step > WARMUP_STEPS:
                durations.append(at - max([previous] + [m for m in marks if m < at]))
            previous = at
        return durations


def measure(cfg: RunConfig, steps: int) -> Measurement:
    """Train ``cfg`` for ``WARMUP_STEPS + steps`` steps in a scratch folder and time it."""
    from ..pipeline import train_run

    clock = StepClock()
    with tempfile.TemporaryDirectory(prefix="dialogtune-measure-") as folder:
        run = cfg.model_copy(deep=True)
        run.output = str(Path(folder) / "run")
        run.train.max_steps = WARMUP_STEPS + steps
        started = time.perf_counter()
        train_run(run, callbacks=[clock])
        finished = time.perf_counter()
    return _measurement(cfg.resolved(), clock, started, finished)


def _measurement(cfg: RunConfig, clock: StepClock, started: float,
                 finished: float) -> Measurement:
    durations = clock.step_seconds()
    per_step = statistics.fmean(durations)
    last_end, end = clock.epoch_ends[-1]
    # the step before the first epoch end: what follows it until the end is that epoch's end
    before_end = max(at for _, at in clock.steps if at <= clock.epoch_ends[0][0])
    return Measurement(
        model=str(cfg.model.name), strategy=str(cfg.strategy.name),
        batch_size=cfg.train.batch_size, seconds_per_step=per_step,
        steps_timed=len(durations),
        startup_seconds=max(0.0, clock.steps[0][1] - started - per_step),
        epoch_end_seconds=clock.epoch_ends[0][0] - before_end,
        finish_seconds=finished - last_end, steps_per_epoch=end.steps_per_epoch,
        threads=clock.threads)
