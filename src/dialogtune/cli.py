"""The ``dialogtune`` command line: one function per verb, each parsing and calling one API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from .commands.chat import PICKLE_HELP, TRUST_HELP
from .errors import DialogtuneError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune, evaluate and serve domain dialogue models (intent and chat).")
log = logging.getLogger("dialogtune")


def quiet_libraries() -> None:
    """Keep the terminal for dialogtune's own progress and results.

    Environment variables rather than transformers' logging calls, so that commands which
    never load a model (``data check``, ``--help``) do not import transformers (~0.4 s).
    """
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if "transformers" in sys.modules:  # already imported (in-process callers): env is read
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


@app.command()
def train(
    data: Optional[str] = typer.Option(None, "--data", help="Training file (CSV/JSONL) or folder."),
    output: Optional[str] = typer.Option(None, "--output", help="Run directory to write."),
    task: Optional[str] = typer.Option(None, "--task", help="intent | chat | pretrain"),
    eval_data: Optional[str] = typer.Option(None, "--eval-data", help="Validation file."),
    model: Optional[str] = typer.Option(None, "--model", help="Alias, local folder or hub id."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="full, freeze, lora, ..."),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML config file."),
    overrides: list[str] = typer.Option([], "--set", help="Override a setting: key=value."),
    text_column: Optional[str] = typer.Option(None, "--text-column"),
    label_column: Optional[str] = typer.Option(None, "--label-column"),
    data_format: Optional[str] = typer.Option(None, "--format", help="Chat data format."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
) -> None:
    """Fine-tune a model; writes config, label map, logs, metrics, plots and weights."""
    from .config import load_config
    from .pipeline import train_run

    if resume and output and (Path(output) / "config.yaml").exists() and config is None:
        config = Path(output) / "config.yaml"
    cfg = load_config(config, overrides, **{
        "task": task, "output": output, "data.train": data, "data.eval": eval_data,
        "data.text_column": text_column, "data.label_column": label_column,
        "data.format": data_format, "model.name": model, "strategy.name": strategy,
        "train.epochs": epochs})
    summary = train_run(cfg, resume=resume)
    typer.echo(json.dumps(summary, indent=2))


@app.command("eval")
def evaluate(
    run: Path = typer.Argument(..., help="A run directory."),
    data: str = typer.Option(..., "--data", help="Labelled test file."),
    output: Optional[Path] = typer.Option(None, "--output", help="metrics.json to write."),
    base: bool = typer.Option(False, "--base", help="Score the base model the run started from."),
    oos_threshold: Optional[float] = typer.Option(
        None, "--oos-threshold", min=0.0, max=1.0,
        help="Intent runs: flag out of scope below this top probability (default: the run's "
             "calibrated one)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Evaluate a run on held-out data and write the metrics (and plots) as JSON/PNG.

    For intent runs, test labels the run never saw are out of scope: the metrics then
    include their detection (recall, precision, F1, AUROC, the F1-best threshold).
    """
    from .commands.chat import load_policy
    from .pipeline import evaluate_run

    metrics = evaluate_run(run, data, output, base=base, oos_threshold=oos_threshold,
                           policy=load_policy(trust_remote_code, allow_pickle))
    typer.echo(json.dumps(_headline(metrics), indent=2))
    if output:
        typer.echo(f"wrote {output}")


def _headline(metrics: dict) -> dict:
    """The numbers a person reads first; the file holds everything."""
    headline = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    oos = metrics.get("out_of_scope") or {}
    headline.update({f"out_of_scope_{k}": v for k, v in oos.items()
                     if k in ("recall", "precision", "f1", "auroc", "in_scope_accuracy")})
    return headline


@app.command()
def predict(
    run: Path = typer.Argument(..., help="A trained intent run."),
    texts: list[str] = typer.Argument(None, help="Utterances to classify."),
    file: Optional[Path] = typer.Option(None, "--file", help="One utterance per line."),
    top_k: int = typer.Option(3, "--top-k"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Top-k intents with probabilities for each utterance."""
    from .commands.chat import load_policy
    from .data.files import read_text
    from .inference.intent import Predictor

    items = list(texts or [])
    if file is not None:
        items += [line.strip() for line in read_text(file).splitlines() if line.strip()]
    if not items:
        raise DialogtuneError("nothing to classify: give TEXT arguments or --file")
    policy = load_policy(trust_remote_code, allow_pickle)
    results = Predictor.from_run(run, policy).classify(items, top_k)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for result in results:
        ranked = "  ".join(f"{r['intent']} {r['probability']:.3f}" for r in result["intents"])
        flag = "  [out of scope]" if result["out_of_scope"] else ""
        typer.echo(f"{result['text']}\n  -> {ranked}{flag}")


def _register_commands() -> None:
    from .commands import chat, data, serve

    for module in (data, chat, serve):
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="dialogtune: %(message)s")
    quiet_libraries()
    try:
        app(args=argv, standalone_mode=False)
    except DialogtuneError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted; continue with: dialogtune train --resume --output RUN", err=True)
        return 130
    except (typer.Abort,):
        return 1
    except Exception as exc:  # usage errors, from click or from typer's own copy of click
        import click

        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
