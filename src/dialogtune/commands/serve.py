"""``dialogtune serve``: the HTTP server (OpenAI-compatible chat, intents, web chat)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import DialogtuneError
from .common import BACKEND_HELP, PICKLE_HELP, PRECISION_HELP, checked_precision

API_KEY_ENV = "DIALOGTUNE_API_KEY"
log = logging.getLogger("dialogtune")
CHAT_HELP = ("A chat run, a model folder or an alias (smollm2). Repeat it to serve several: "
             "a request's 'model' picks one (the first: the default).")
API_KEY_HELP = (f"Require 'Authorization: Bearer KEY' on /v1. Prefer the {API_KEY_ENV} "
                "environment variable: a command line is visible to every user (ps).")
HOSTS_HELP = ("Comma list of Host names to answer besides localhost and --host "
              "('*.example.com' for subdomains, '*' for any); guards against DNS rebinding.")
THREADS_HELP = ("torch threads generating chat replies (default: the cores other processes "
                "leave idle, re-measured every few seconds).")


def serve(
    intent: Optional[Path] = typer.Option(None, "--intent", help="A trained intent run."),
    chat: Optional[list[str]] = typer.Option(None, "--chat", help=CHAT_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (localhost only "
                             "by default)."),
    port: int = typer.Option(8000, "--port"),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar=API_KEY_ENV,
                                          help=API_KEY_HELP),
    allowed_hosts: Optional[str] = typer.Option(None, "--allowed-hosts", help=HOSTS_HELP),
    log_db: Optional[Path] = typer.Option(None, "--log-db", help="SQLite log of exchanges."),
    oos_threshold: Optional[float] = typer.Option(
        None, "--oos-threshold",
        help="Out-of-scope below this top probability (default: the run's calibrated one)."),
    fallback_reply: Optional[str] = typer.Option(
        None, "--fallback-reply", help="Answer out-of-scope turns with this text."),
    max_tokens: int = typer.Option(1024, "--max-tokens-limit",
                                   help="Largest max_tokens a request may ask for."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
    generation_timeout: float = typer.Option(
        300.0, "--generation-timeout",
        help="Seconds one generation may run; the reply so far is returned, cut ('length')."),
    drain_seconds: float = typer.Option(
        30.0, "--drain-seconds", help="On SIGTERM, seconds to finish queued work before "
                                      "cancelling it."),
    backend: str = typer.Option("torch", "--backend", help="For --intent: " + BACKEND_HELP),
    generation_batch: int = typer.Option(8, "--generation-batch", help="Chat replies decoded "
                                         "together, one forward pass a step; 1: one at a time."),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP,
                                   callback=checked_precision),
    generation_threads: Optional[int] = typer.Option(None, "--generation-threads",
                                                     help=THREADS_HELP),
) -> None:
    """Serve intent and/or chat models over HTTP, with a web chat at / (Ctrl+C stops;
    SIGHUP reloads the chat models, in-flight replies finishing on the old weights)."""
    from ..serve.runtime import load_chats, load_models, run_server

    if intent is None and not chat:
        raise DialogtuneError("nothing to serve: give --intent RUN and/or --chat RUN|smollm2")
    settings = build_settings(host=host, port=port, api_key=api_key,
                              allowed_hosts=allowed_hosts, log_db=log_db,
                              oos_threshold=oos_threshold, fallback_reply=fallback_reply,
                              max_tokens=max_tokens, generation_timeout=generation_timeout,
                              drain_seconds=drain_seconds, generation_batch=generation_batch,
                              generation_threads=generation_threads)
    run_server(settings, load_models(intent, None, allow_pickle, backend)[0],
               *load_chats(chat or [], allow_pickle, precision))


def build_settings(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                   allowed_hosts: str | None = None, log_db: Path | None = None,
                   oos_threshold: float | None = None, fallback_reply: str | None = None,
                   max_tokens: int = 1024, generation_timeout: float = 300.0,
                   drain_seconds: float = 30.0, generation_batch: int = 8,
                   generation_threads: int | None = None):
    """Checked ``ServeSettings`` from the command line's values (and the environment)."""
    from ..serve.settings import ServeSettings

    if oos_threshold is not None and not 0.0 <= oos_threshold <= 1.0:
        raise DialogtuneError(f"--oos-threshold {oos_threshold}: expected a probability in [0, 1]")
    if max_tokens < 1:
        raise DialogtuneError("--max-tokens-limit must be at least 1")
    if generation_batch < 1:
        raise DialogtuneError("--generation-batch must be at least 1 (1: one at a time)")
    if generation_threads is not None and generation_threads < 1:
        raise DialogtuneError("--generation-threads must be at least 1")
    if generation_timeout <= 0 or drain_seconds <= 0:
        raise DialogtuneError("--generation-timeout and --drain-seconds must be above 0 seconds")
    env_key = os.environ.get(API_KEY_ENV) or None
    if api_key and api_key != env_key:
        log.warning("--api-key on the command line is visible to every user of this machine "
                    "(ps); set %s instead", API_KEY_ENV)
    hosts = tuple(h.strip() for h in (allowed_hosts or "").split(",") if h.strip())
    if allowed_hosts is not None and not hosts:
        raise DialogtuneError("--allowed-hosts: expected a comma list of host names or '*'")
    return ServeSettings(host=host, port=port, api_key=api_key or env_key,
                         allowed_hosts=hosts or None,
                         log_db=str(log_db) if log_db else None,
                         oos_threshold=oos_threshold, fallback_reply=fallback_reply,
                         max_tokens_limit=max_tokens, default_max_tokens=min(256, max_tokens),
                         generation_timeout=generation_timeout, drain_seconds=drain_seconds,
                         generation_batch=generation_batch,
                         generation_threads=generation_threads)
