"""``dialogtune predict``: the top-k intents of utterances (and their slots, NLU runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import BACKEND_HELP, PICKLE_HELP, TRUST_HELP, load_policy


def predict(
    run: Path = typer.Argument(..., help="A trained intent or NLU run."),
    texts: list[str] = typer.Argument(None, help="Utterances to classify."),
    file: Optional[Path] = typer.Option(None, "--file", help="One utterance per line."),
    top_k: int = typer.Option(3, "--top-k"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
) -> None:
    """Top-k intents with probabilities for each utterance (and its slots, NLU runs)."""
    from ..inference.intent import predict_texts

    results = predict_texts(run, texts, file, top_k,
                            load_policy(trust_remote_code, allow_pickle), backend)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for result in results:
        ranked = "  ".join(f"{r['intent']} {r['probability']:.3f}" for r in result["intents"])
        flag = "  [out of scope]" if result["out_of_scope"] else ""
        typer.echo(f"{result['text']}\n  -> {ranked}{flag}")
        for slot in result.get("slots", ()):  # NLU runs: one line per slot
            typer.echo(f"     {slot['slot']} = {slot['value']!r} [{slot['start']}:{slot['end']}]"
                       f" {slot['confidence']:.3f}")
