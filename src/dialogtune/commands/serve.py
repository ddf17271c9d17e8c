"""``dialogtune serve``: the HTTP server (OpenAI-compatible chat, intents, web chat)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the serve verb to the main app."""
