"""The verbs' entry points: look up the run's task and call its train or evaluate."""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, load_config, read_run_config
from .runs.layout import RunDir
from .tasks import get_task


def train_run(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Train a run of ``cfg.task``; returns its summary (``run.json``)."""
    return get_task(cfg.task).train(cfg, resume=resume, callbacks=callbacks)


def train_from_options(config: Path | None, overrides: list[str], values: dict,
                       resume: bool = False) -> dict:
    """``dialogtune train``: the config file, then ``--set`` overrides, then the options.

    Resuming a run without ``--config`` reads the run's own ``config.yaml``.
    """
    run = RunDir(Path(values["output"])) if values.get("output") else None
    if resume and run is not None and run.is_run() and config is None:
        config = run.config
    return train_run(load_config(config, overrides, **values), resume=resume)


def evaluate_run(run: str | Path, data: str, output: Path | None = None,
                 base: bool = False, oos_threshold: float | None = None,
                 policy=None, tools: str | None = None, chat_data: str | None = None,
                 backend: str = "torch") -> dict:
    """Evaluate a run on ``data``; writes ``output`` (and plots beside it) when given.

    ``policy`` (a ``models.LoadPolicy`` from the command line) may allow remote code or
    pickle weights; by default neither is, whatever the run's config says. ``tools``: a
    tools file for chat data (default: the run's ``data.tools``). ``chat_data``: held-out
    dialogues for a preference run's chat metrics (only tasks that take it). ``backend``:
    ``torch``, or ``onnx`` for intent and NLU runs (their ONNX export, ``inference.onnx``)."""
    import inspect

    from .errors import DialogtuneError

    task = get_task(read_run_config(Path(run)).task)
    extra = {"chat_data": chat_data} if chat_data else {}
    if extra and "chat_data" not in inspect.signature(task.evaluate).parameters:
        raise DialogtuneError(f"--chat-data applies to preference runs, not {task.name} runs")
    return task.evaluate(run, data, output, base=base, oos_threshold=oos_threshold,
                         policy=policy, tools=tools, backend=backend, **extra)
