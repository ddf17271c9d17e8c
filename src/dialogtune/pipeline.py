"""Task dispatch: one entry per verb, routing to the intent or chat implementation."""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, read_run_config
from .errors import DialogtuneError


def train_run(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    if cfg.task == "intent":
        from .runs.intent import train_intent

        return train_intent(cfg, resume=resume, callbacks=callbacks)
    from .runs import chat

    return chat.train_chat(cfg, resume=resume, callbacks=callbacks)


def evaluate_run(run: str | Path, data: str, output: Path | None = None,
                 base: bool = False, oos_threshold: float | None = None,
                 policy=None) -> dict:
    """Evaluate a run on ``data``; writes ``output`` (and plots beside it) when given.

    ``policy`` (a ``models.LoadPolicy`` from the command line) may allow remote code or
    pickle weights; by default neither is, whatever the run's config says."""
    cfg = read_run_config(Path(run))
    if cfg.task == "intent":
        if base:
            raise DialogtuneError("--base applies to chat runs: an intent head starts random")
        from .checkpoint import write_json_atomic
        from .data.formats import read_intents
        from .evaluate.intent import evaluate_intent
        from .predictor import Predictor

        records = read_intents(data, cfg.data.text_column, cfg.data.label_column,
                               require_labels=1)
        out_dir = Path(output).parent if output else Path(run) / "eval"
        metrics = evaluate_intent(Predictor.from_run(run, policy), records, out_dir, oos_threshold)
        write_json_atomic(metrics, Path(output) if output else out_dir / "metrics.json")
        return metrics
    if oos_threshold is not None:
        raise DialogtuneError("--oos-threshold applies to intent runs")
    from .runs import chat

    return chat.evaluate_chat(Path(run), data, output, base=base, policy=policy)
