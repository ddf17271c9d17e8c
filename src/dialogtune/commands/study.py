"""``dialogtune compare`` and ``dialogtune curve``: many runs of one data set, compared."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

SET_HELP = "Override a setting in every cell: key=value."
EPOCHS_HELP = "Epochs of every cell (short cells: 1 or 2)."
METRIC_HELP = "Quality metric (default: accuracy for intent/nlu, perplexity for chat)."


def compare(
    task: str = typer.Option("intent", "--task", help="intent | nlu | chat"),
    data: str = typer.Option(..., "--data", help="Training file (the same for every cell)."),
    eval_data: str = typer.Option(..., "--eval-data", help="Test file every cell is scored on."),
    models: str = typer.Option(..., "--models", help="Comma-separated: aliases, folders, hub ids."),
    strategies: str = typer.Option(..., "--strategies", help="Comma-separated: full,lora,..."),
    seeds: int = typer.Option(1, "--seeds", help="Training seeds per model and strategy."),
    output: Path = typer.Option(..., "--output", help="Study folder (rerun it to resume)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help=EPOCHS_HELP),
    metric: Optional[str] = typer.Option(None, "--metric", help=METRIC_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config for every cell."),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Train and score models × strategies × seeds; compare.json, compare.md, compare.png."""
    from ..study.compare import run_compare
    from ..study.report import markdown_table

    study = run_compare(task, data, eval_data, models, strategies, output, seeds, epochs,
                        config, overrides, metric)
    typer.echo(markdown_table(study["rows"], study["quality_metric"]))
    typer.echo(f"wrote {output / 'compare.json'}, compare.md and compare.png")


def curve(
    task: str = typer.Option("intent", "--task", help="intent | nlu | chat"),
    data: str = typer.Option(..., "--data", help="Training file to subsample."),
    eval_data: str = typer.Option(..., "--eval-data", help="Test file every point is scored on."),
    fractions: Optional[str] = typer.Option(
        None, "--fractions", help="Fractions of each intent (default 0.1,0.25,0.5,1)."),
    shots: Optional[str] = typer.Option(None, "--shots", help="Per intent, e.g. 5,10,20."),
    seeds: int = typer.Option(3, "--seeds", help="Subsample and training seeds per size."),
    target: Optional[float] = typer.Option(None, "--target",
                                           help="Estimate the examples to reach it."),
    output: Path = typer.Option(..., "--output", help="Study folder (rerun it to resume)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: the task's)."),
    strategy: Optional[str] = typer.Option(None, "--strategy",
                                           help="Strategy (default: the task's)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help=EPOCHS_HELP),
    metric: Optional[str] = typer.Option(None, "--metric", help=METRIC_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config for every cell."),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Learning curve over training-set sizes; curve.json, curve.png, the data for a target."""
    from ..study.curve import run_curve

    result = run_curve(task, data, eval_data, output, fractions, shots, seeds, target, metric,
                       epochs, config, overrides, model, strategy)
    for size in result["sizes"]:
        typer.echo(f"{size['size']:>7} examples: {result['metric']} {size['mean']:.4f} "
                   f"± {size['std']:.4f} ({size['seeds']} seeds)")
    if result["fit"]:
        typer.echo(f"fit: {result['metric']}(n) = {result['fit']['formula']}")
    if result["estimate"]:
        typer.echo(result["estimate"]["statement"])
    typer.echo(f"wrote {output / 'curve.json'} and curve.png")
