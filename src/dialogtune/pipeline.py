"""The verbs' entry points: look up the run's task and call its train or evaluate."""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, read_run_config
from .tasks import get_task


def train_run(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Train a run of ``cfg.task``; returns its summary (``run.json``)."""
    return get_task(cfg.task).train(cfg, resume=resume, callbacks=callbacks)


def evaluate_run(run: str | Path, data: str, output: Path | None = None,
                 base: bool = False, oos_threshold: float | None = None,
                 policy=None) -> dict:
    """Evaluate a run on ``data``; writes ``output`` (and plots beside it) when given.

    ``policy`` (a ``models.LoadPolicy`` from the command line) may allow remote code or
    pickle weights; by default neither is, whatever the run's config says."""
    task = get_task(read_run_config(Path(run)).task)
    return task.evaluate(run, data, output, base=base, oos_threshold=oos_threshold,
                         policy=policy)


def load_classifier(run: str | Path, policy=None):
    """The predictor of a trained intent or NLU run (its task's ``load_predictor``): what
    ``predict`` and the server's ``--intent`` load. Other runs are refused in one line."""
    from .errors import DialogtuneError
    from .runs.layout import RunDir
    from .strategies import CLASSIFIER

    task = get_task(read_run_config(RunDir(Path(run)).require_trained().path).task)
    if task.model_kind != CLASSIFIER:
        raise DialogtuneError(f"{run}: a {task.name} run, not an intent or NLU run")
    return task.load_predictor(run, policy)
