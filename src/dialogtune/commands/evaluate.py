"""``dialogtune eval``: score a run on held-out data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import BACKEND_HELP, PICKLE_HELP, TOOLS_HELP, TRUST_HELP, load_policy


def evaluate(
    run: Optional[Path] = typer.Argument(None, help="A run directory (not with --zero-shot)."),
    data: str = typer.Option(..., "--data", help="Labelled test file."),
    output: Optional[Path] = typer.Option(None, "--output", help="metrics.json to write."),
    base: bool = typer.Option(False, "--base", help="Score the base model the run started from."),
    oos_threshold: Optional[float] = typer.Option(
        None, "--oos-threshold", min=0.0, max=1.0,
        help="Intent runs: flag out of scope below this top probability (default: the run's "
             "calibrated one)."),
    tools: Optional[str] = typer.Option(
        None, "--tools", help="Chat runs: " + TOOLS_HELP + " Default: the run's data.tools."),
    zero_shot: bool = typer.Option(
        False, "--zero-shot", help="Intent data: score an untuned chat model (--model) by the "
                                   "likelihood of each label as its reply; no run needed."),
    model: Optional[str] = typer.Option(None, "--model", help="With --zero-shot: the chat "
                                        "model (alias such as smollm2, or a local folder)."),
    label_descriptions: Optional[str] = typer.Option(
        None, "--label-descriptions", help="With --zero-shot: YAML/JSON mapping each label to "
                                           "a description shown in the prompt."),
    chat_data: Optional[str] = typer.Option(
        None, "--chat-data", help="Preference runs: held-out dialogues, scored with the chat "
                                  "metrics (perplexity, grounding) beside the preference ones."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
) -> None:
    """Evaluate a run on held-out data and write the metrics (and plots) as JSON/PNG.

    For intent runs, test labels the run never saw are out of scope: the metrics then
    include their detection (recall, precision, F1, AUROC, the F1-best threshold).
    ``--zero-shot --model M``: the same intent metrics for a chat model with no tuning.
    Preference runs: accuracy and margin on held-out pairs, chat metrics with --chat-data.
    """
    policy = load_policy(trust_remote_code, allow_pickle)
    if zero_shot:
        metrics = _zero_shot(run, model, data, output, policy, label_descriptions)
    else:
        from ..pipeline import evaluate_run

        if run is None or model or label_descriptions:
            raise typer.BadParameter("give a run directory; --model and --label-descriptions "
                                     "go with --zero-shot")
        metrics = evaluate_run(run, data, output, base=base, oos_threshold=oos_threshold,
                               policy=policy, tools=tools, chat_data=chat_data,
                               backend=backend)
    typer.echo(json.dumps(headline(metrics), indent=2))
    if output:
        typer.echo(f"wrote {output}")


def _zero_shot(run, model, data, output, policy, label_descriptions) -> dict:
    from ..inference.zero_shot import evaluate_zero_shot

    if run is not None or model is None:
        raise typer.BadParameter("--zero-shot takes --model and no run directory")
    return evaluate_zero_shot(model, data, output, policy, label_descriptions)


def headline(metrics: dict) -> dict:
    """The numbers a person reads first; the file holds everything."""
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    oos = metrics.get("out_of_scope") or {}
    shown.update({f"out_of_scope_{k}": v for k, v in oos.items()
                  if k in ("recall", "precision", "f1", "auroc", "in_scope_accuracy")})
    return shown
