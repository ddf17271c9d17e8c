"""``dialogtune recommend`` and ``dialogtune tune``: which settings to train with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def recommend(
    task: str = typer.Option(..., "--task", help="intent | nlu | chat | pretrain"),
    data: str = typer.Option(..., "--data", help="Training file (CSV/JSONL) or folder."),
    budget: Optional[str] = typer.Option(
        None, "--budget", help="Time the training may take: 90s, 10m, 1h."),
    model: Optional[str] = typer.Option(None, "--model", help="Default: the task's model."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    steps: int = typer.Option(5, "--steps", min=1, help="Steps timed per candidate."),
    overrides: list[str] = typer.Option([], "--set", help="A setting for the run: key=value."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="recommend.json: a .json path, or a folder to write it into."),
) -> None:
    """Recommend model, strategy, epochs and batch size from steps measured on this machine,
    with the estimated train time and its formula."""
    from ..advise.recommend import parse_budget, recommend as run

    result = run(task, data, parse_budget(budget), model, batch_size, overrides, steps, output)
    typer.echo(json.dumps(result, indent=2))


def tune(
    task: str = typer.Option(..., "--task", help="intent | nlu | chat | pretrain"),
    data: str = typer.Option(..., "--data", help="Training file (CSV/JSONL) or folder."),
    trials: int = typer.Option(..., "--trials", help="Trials to complete (pruned count)."),
    output: Path = typer.Option(Path("runs/tune"), "--output",
                                help="Folder: trials/<n>/, best.yaml, tune.json."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna storage URL (default sqlite:///OUTPUT/tune.db)."),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Validation file."),
    strategies: Optional[str] = typer.Option(
        None, "--strategies", help="Strategies to search, comma-separated (default: the "
                                   "task's)."),
    study_name: Optional[str] = typer.Option(None, "--study-name",
                                             help="Default: the output folder's name."),
    overrides: list[str] = typer.Option([], "--set", help="A fixed setting: key=value."),
    seed: int = typer.Option(42, "--seed", help="The sampler's seed."),
) -> None:
    """Search learning rate, epochs, batch size and strategy settings with Optuna (pruned
    on each epoch's validation, resumable); writes best.yaml for train --config."""
    from ..advise.tune import tune as run

    names = [s.strip() for s in strategies.split(",") if s.strip()] if strategies else None
    summary = run(task, data, trials, output, storage, eval_data, names, study_name,
                  overrides, seed)
    summary.pop("trials")
    typer.echo(json.dumps(summary, indent=2))
