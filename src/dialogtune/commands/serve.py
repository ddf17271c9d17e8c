"""``dialogtune serve``: the HTTP server (OpenAI-compatible chat, intents, web chat)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import DialogtuneError


def serve(
    intent: Optional[Path] = typer.Option(None, "--intent", help="A trained intent run."),
    chat: Optional[str] = typer.Option(None, "--chat",
                                       help="A chat run, a model folder or an alias (smollm2)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (localhost only "
                             "by default)."),
    port: int = typer.Option(8000, "--port"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="DIALOGTUNE_API_KEY",
                                          help="Require 'Authorization: Bearer KEY' on /v1."),
    log_db: Optional[Path] = typer.Option(None, "--log-db",
                                          help="SQLite file logging exchanges and feedback."),
    oos_threshold: Optional[float] = typer.Option(
        None, "--oos-threshold",
        help="Out-of-scope below this top probability (default: the run's calibrated one)."),
    fallback_reply: Optional[str] = typer.Option(
        None, "--fallback-reply", help="Answer out-of-scope turns with this text."),
    max_tokens: int = typer.Option(1024, "--max-tokens-limit",
                                   help="Largest max_tokens a request may ask for."),
) -> None:
    """Serve intent and/or chat models over HTTP, with a web chat at / (Ctrl+C stops)."""
    from ..serve.runtime import load_models, run_server
    from ..serve.settings import ServeSettings

    if intent is None and chat is None:
        raise DialogtuneError("nothing to serve: give --intent RUN and/or --chat RUN|smollm2")
    if oos_threshold is not None and not 0.0 <= oos_threshold <= 1.0:
        raise DialogtuneError(f"--oos-threshold {oos_threshold}: expected a probability in [0, 1]")
    if max_tokens < 1:
        raise DialogtuneError("--max-tokens-limit must be at least 1")
    settings = ServeSettings(host=host, port=port, api_key=api_key or None,
                             log_db=str(log_db) if log_db else None,
                             oos_threshold=oos_threshold, fallback_reply=fallback_reply,
                             max_tokens_limit=max_tokens,
                             default_max_tokens=min(256, max_tokens))
    run_server(settings, *load_models(intent, chat))


def register(app: typer.Typer) -> None:
    """Add the serve verb to the main app."""
    app.command("serve")(serve)
