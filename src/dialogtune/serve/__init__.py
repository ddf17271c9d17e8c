"""Serving: the OpenAI-compatible HTTP API, intents, web chat and conversation logging.

The log itself (schema, writing, reading) is ``dialogtune.data.conversation_log``, next to
the other data writers; serve imports data, never the reverse. ``create_app`` is imported
lazily so that light users do not pay for importing FastAPI and torch.
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
