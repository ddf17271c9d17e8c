"""``dialogtune explain``: which words decided an intent, or how likely each reply token was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import PICKLE_HELP, TRUST_HELP, load_policy


def explain(
    run: Path = typer.Argument(..., help="A trained intent, NLU or chat run."),
    text: str = typer.Argument(..., help="The utterance (chat: the user message)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write a standalone HTML page."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    method: Optional[str] = typer.Option(None, "--method",
                                         help="ig or occlusion (intent/NLU; default ig)."),
    target_intent: Optional[str] = typer.Option(None, "--target-intent",
                                                help="Explain this intent, not the predicted one."),
    reply: Optional[str] = typer.Option(None, "--reply",
                                        help="Chat: score this reply instead of generating one."),
    top_k: int = typer.Option(5, "--top-k", help="Intents ranked, or least likely tokens."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Token attributions for an intent/NLU run's intent, or a chat reply's token
    log-probabilities, coloured in the terminal (and as HTML with --html)."""
    from ..inference.explain import explain_run
    from ..inference.explain.render import print_explanation

    result = explain_run(run, text, method, target_intent, reply, top_k, max_new_tokens, html,
                         load_policy(trust_remote_code, allow_pickle))
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_explanation(result)
