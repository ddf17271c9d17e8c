"""``dialogtune recommend``: the model, strategy, epochs and batch size to train this data
with on this machine, and how long that run will take, estimated from measured steps.

The estimate is a sum of measured parts (see ``measure.py``), printed with its numbers:
imports + start (model, data) + steps × seconds per step + epoch ends × seconds per epoch
end (validation, checkpoint) + final files. The steps follow the task's own rule
(``optim.total_steps``: its epochs, cut by ``train.step_budget``, at least
``train.min_steps``), so the estimate describes the command it recommends, which states the
resulting epochs explicitly.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig, TrainConfig, load_config
from ..errors import ConfigError
from .measure import WARMUP_STEPS, Measurement, measure

log = logging.getLogger("dialogtune")
BUDGET_UNITS = {"s": 1, "m": 60, "h": 3600}
# Timed steps per candidate after the warm-up. Batches are grouped by length, so single
# steps differ (a 13-token batch against a 40-token one); the mean of 5 is the estimator.
TIMED_STEPS = 5


def parse_budget(text: str | None) -> float | None:
    """``90s`` / ``10m`` / ``1.5h`` / ``600`` (seconds) → seconds; None for no budget."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise ConfigError(f"--budget {text!r}: expected a positive duration such as 90s, "
                          "10m or 1h")
    return float(match[1]) * BUDGET_UNITS[match[2] or "s"]


@dataclass(frozen=True)
class Estimate:
    """The run one candidate would make, and its time as a formula of measured parts."""

    measurement: Measurement
    epochs: float
    steps: int
    epoch_ends: int
    import_seconds: float
    # A fresh ``train`` process pays lazy imports (transformers' model code, matplotlib for
    # the curves) on its way; only the first candidate measured paid them, so every later
    # one is given at least the first one's start and final files (same model and data).
    cold: Measurement | None = None

    @property
    def startup_seconds(self) -> float:
        return max(self.measurement.startup_seconds, self.cold.startup_seconds if self.cold
                   else 0.0)

    @property
    def finish_seconds(self) -> float:
        return max(self.measurement.finish_seconds, self.cold.finish_seconds if self.cold
                   else 0.0)

    @property
    def seconds(self) -> float:
        return self.seconds_for(self.steps)

    def seconds_for(self, steps: int) -> float:
        """The run's time if it ends after ``steps`` steps (early stopping ends it sooner)."""
        m = self.measurement
        return (self.import_seconds + self.startup_seconds + steps * m.seconds_per_step
                + math.ceil(steps / m.steps_per_epoch) * m.epoch_end_seconds
                + self.finish_seconds)

    @property
    def formula(self) -> str:
        m = self.measurement
        return (f"{self.import_seconds:.1f} s imports + {self.startup_seconds:.1f} s start "
                f"(model, data) + {self.steps} steps ({m.steps_per_epoch} per epoch × "
                f"{self.epochs:g} epochs) × {m.seconds_per_step:.3f} s + {self.epoch_ends} "
                f"epoch ends (validation, checkpoint) × {m.epoch_end_seconds:.2f} s + "
                f"{self.finish_seconds:.1f} s final files = {self.seconds:.1f} s")


def plan(measurement: Measurement, train: TrainConfig, import_seconds: float,
         cold: Measurement | None = None) -> Estimate:
    """The estimate for training with ``train`` (its epochs, min_steps and max_steps)."""
    from ..optim import total_steps

    steps = total_steps(measurement.steps_per_epoch, train)
    return Estimate(measurement, train.epochs, steps,
                    math.ceil(steps / measurement.steps_per_epoch), import_seconds, cold)


def earliest_stop(per_epoch: int, total: int, patience: int) -> int:
    """The first step at which early stopping can end a run of ``total`` steps: the
    ``patience``-th epoch end from step ``total // 2`` on (the rule of ``train.fit``)."""
    ends = [step for step in range(per_epoch, total, per_epoch) if step >= total // 2]
    return ends[patience - 1] if len(ends) >= patience else total


def planned_epochs(train: TrainConfig, per_epoch: int) -> float:
    """The passes the task's defaults give this data, written as epochs so the command
    states them: more than ``train.epochs`` where the data is small and ``train.min_steps``
    sets the length (intent: 100 steps; rounded down, the run still takes its min_steps),
    fewer where ``train.step_budget`` cuts long epochs (intent: BANKING77's 4 → 2). Epochs
    the user states are never cut by the budget (``Task.resolve``), so the command must
    state the cut length itself."""
    from ..optim import total_steps

    return math.floor(total_steps(per_epoch, train) / per_epoch * 100) / 100


def fit_to_budget(estimate: Estimate, train: TrainConfig, budget: float) -> TrainConfig:
    """``train`` capped (``max_steps``) so the estimate fits ``budget``; one step at least."""
    m = estimate.measurement
    fixed = (estimate.import_seconds + estimate.startup_seconds + estimate.finish_seconds
             + m.epoch_end_seconds)
    per_step = m.seconds_per_step + m.epoch_end_seconds / m.steps_per_epoch
    steps = max(1, math.floor((budget - fixed) / per_step))
    return train.model_copy(update={
        "max_steps": steps, "epochs": math.floor(steps / m.steps_per_epoch * 100) / 100 or 0.01})


def describe_data(task, cfg: RunConfig) -> dict:
    """Examples, labels and the smallest and median examples per label of the training file."""
    records = task.read_data(cfg, cfg.data.train)
    labels = Counter(label for label in (getattr(r, "label", None) for r in records)
                     if label is not None)
    info = {"path": cfg.data.train, "examples": len(records)}
    if labels:
        counts = sorted(labels.values())
        info.update(labels=len(labels), examples_per_label_min=counts[0],
                    examples_per_label_median=counts[len(counts) // 2])
    return info


def recommend(task_name: str, data: str, budget: float | None = None, model: str | None = None,
              batch_size: int | None = None, overrides: list[str] = (),
              steps: int = TIMED_STEPS, output: Path | None = None) -> dict:
    """Measure the task's default strategy (and, when it does not fit ``budget`` seconds,
    the strategies ``strategies.BUDGET_FALLBACKS`` names) and recommend one; writes
    ``recommend.json`` when ``output`` is given (a ``.json`` path or a folder)."""
    from ..tasks import get_task

    started = time.perf_counter()
    task = get_task(task_name)  # torch, transformers: what every train command imports first
    import_seconds = time.perf_counter() - started
    cfg = load_config(None, list(overrides), task=task_name, **{
        "data.train": data, "model.name": model, "train.batch_size": batch_size})
    data_info = describe_data(task, cfg)
    estimates = []
    for strategy in _candidates(cfg, budget):
        candidate = cfg.model_copy(deep=True)
        candidate.strategy.name = strategy
        print(f"measuring {strategy}: {steps} steps after {WARMUP_STEPS} warm-up",
              file=sys.stderr)
        measured = measure(candidate, steps)
        train = candidate.resolved().train
        train.epochs = planned_epochs(train, measured.steps_per_epoch)
        cold = estimates[0][0].measurement if estimates else None
        estimates.append((plan(measured, train, import_seconds, cold), train))
        if budget is None or estimates[-1][0].seconds <= budget:
            break
    chosen, train, reason = _choose(estimates, budget)
    result = _result(task_name, cfg, data_info, chosen, train, budget, reason, estimates,
                     list(overrides))
    if output is not None:
        from ..checkpoint import write_json_atomic

        path = output if output.suffix == ".json" else output / "recommend.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(result, path)
    return result


def _candidates(cfg: RunConfig, budget: float | None) -> list[str]:
    """The strategy the user set, or the task's default then (with a budget) the fallbacks."""
    from ..strategies import BUDGET_FALLBACKS

    if cfg.strategy.name:
        return [cfg.strategy.name]
    default = cfg.resolved().strategy.name
    return [default] + ([s for s in BUDGET_FALLBACKS if s != default] if budget else [])


def _choose(estimates: list, budget: float | None) -> tuple[Estimate, TrainConfig, str]:
    first = estimates[0][0]
    name = first.measurement.strategy
    if budget is None:
        return first, estimates[0][1], (f"{name}: the task's default strategy (no --budget "
                                        "given, so nothing cheaper was measured)")
    for estimate, train in estimates:
        if estimate.seconds <= budget:
            strategy = estimate.measurement.strategy
            if estimate is first:
                return estimate, train, (f"{strategy}: the task's default strategy fits the "
                                         f"budget ({estimate.seconds:.0f} s of {budget:.0f} s)")
            return estimate, train, (
                f"{strategy}: {name} (the default) would take {first.seconds:.0f} s, over the "
                f"{budget:.0f} s budget; {strategy} fits ({estimate.seconds:.0f} s)")
    fastest, train = min(estimates, key=lambda pair: pair[0].measurement.seconds_per_step)
    capped = fit_to_budget(fastest, train, budget)
    estimate = plan(fastest.measurement, capped, fastest.import_seconds, fastest.cold)
    return estimate, capped, (
        f"{fastest.measurement.strategy}: no strategy measured fits {budget:.0f} s at the "
        f"default length (fastest: {fastest.seconds:.0f} s); its run is cut to "
        f"{capped.max_steps} steps (train.max_steps), which costs accuracy")


def _result(task_name: str, cfg: RunConfig, data_info: dict, chosen: Estimate,
            train: TrainConfig, budget: float | None, reason: str, estimates: list,
            overrides: list[str]) -> dict:
    from ..precision import cpu_description

    m = chosen.measurement
    # early stopping may end the run sooner; this is the soonest it can
    early = earliest_stop(m.steps_per_epoch, chosen.steps, train.patience)
    return {
        "task": task_name, "data": data_info, "model": m.model, "strategy": m.strategy,
        "epochs": chosen.epochs, "batch_size": m.batch_size, "steps": chosen.steps,
        "steps_per_epoch": m.steps_per_epoch,
        "estimated_train_seconds": round(chosen.seconds, 1), "formula": chosen.formula,
        "earliest_stop_steps": early,
        "estimated_earliest_seconds": round(chosen.seconds_for(early), 1),
        "budget_seconds": budget, "reason": reason,
        "measured": {"cpu": cpu_description()["model"], "threads": m.threads,
                     "import_seconds": round(chosen.import_seconds, 3),
                     "candidates": [{**e.measurement.to_json(),
                                     "estimated_train_seconds": round(e.seconds, 1)}
                                    for e, _ in estimates]},
        "train": train_command(task_name, cfg, m, train, overrides)}


def train_command(task_name: str, cfg: RunConfig, m: Measurement, train: TrainConfig,
                  overrides: list[str]) -> str:
    """The ``dialogtune train`` line that applies the recommendation."""
    words = ["dialogtune", "train", "--task", task_name, "--data", str(cfg.data.train),
             "--output", f"runs/{task_name}", "--model", m.model, "--strategy", m.strategy,
             "--epochs", f"{train.epochs:g}", "--set", f"train.batch_size={m.batch_size}"]
    if train.max_steps:
        words += ["--set", f"train.max_steps={train.max_steps}"]
    for item in overrides:
        if not item.startswith(("train.batch_size=", "batch_size=")):
            words += ["--set", item]
    return shlex.join(words)
