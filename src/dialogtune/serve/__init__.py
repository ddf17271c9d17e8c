"""Serving: the OpenAI-compatible HTTP API, intents, web chat and conversation log.

``create_app`` is imported lazily so that light users (``data export-logs`` reading the
log) do not pay for importing FastAPI and torch.
"""

from __future__ import annotations

__all__ = ["create_app", "ServeSettings"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServeSettings":
        from .settings import ServeSettings

        return ServeSettings
    raise AttributeError(name)
