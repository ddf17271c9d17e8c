"""``dialogtune train``: fine-tune a model into a run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import TOOLS_HELP


def train(
    data: Optional[str] = typer.Option(None, "--data", help="Training file (CSV/JSONL) or folder."),
    output: Optional[str] = typer.Option(None, "--output", help="Run directory to write."),
    task: Optional[str] = typer.Option(None, "--task",
                                       help="intent | nlu | chat | pretrain | preference"),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Validation file."),
    model: Optional[str] = typer.Option(None, "--model", help="Alias, local folder or hub id "
                                        "(preference: or a chat run to start from)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="full, freeze, lora, ..."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    method: Optional[str] = typer.Option(
        None, "--method", help="Preference: dpo | orpo | kto | simpo (default dpo)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config file."),
    overrides: list[str] = typer.Option([], "--set", help="Override a setting: key=value."),
    text_column: Optional[str] = typer.Option(None, "--text-column"),
    label_column: Optional[str] = typer.Option(None, "--label-column"),
    data_format: Optional[str] = typer.Option(
        None, "--format", help="Data format: chat (chat, sharegpt, alpaca) or nlu (jsonl, "
                               "rasa, dialogue, conll); default: detected."),
    tools: Optional[str] = typer.Option(None, "--tools", help="Chat: " + TOOLS_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    force: bool = typer.Option(False, "--force", help="Train although the model cannot "
                               "represent much of the text (its unknown token)."),
) -> None:
    """Fine-tune a model; writes config, label map, logs, metrics, plots and weights."""
    from ..pipeline import train_from_options

    summary = train_from_options(config, overrides, {
        "task": task, "output": output, "data.train": data, "data.eval": eval_data,
        "data.text_column": text_column, "data.label_column": label_column,
        "data.format": data_format, "data.tools": tools, "model.name": model,
        "strategy.name": strategy,
        "train.epochs": epochs, "train.method": method, "data.force": force or None},
        resume=resume)
    typer.echo(json.dumps(summary, indent=2))
