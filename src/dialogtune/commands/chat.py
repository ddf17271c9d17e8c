"""Chat verbs: ``dialogtune chat``, ``generate`` and ``export``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the chat verbs to the main app."""
