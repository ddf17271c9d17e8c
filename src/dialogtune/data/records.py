"""The internal record types every reader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Utterance:
    """One labelled user utterance (intent data). ``line`` is the 1-based line in ``source``."""

    text: str
    label: str
    line: int | None = None
    source: str | None = None


@dataclass
class Message:
    """One chat turn; ``weight`` 0 excludes an assistant turn from the loss."""

    role: str
    content: str
    weight: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dialogue:
    """A multi-turn conversation; ``extra`` keeps fields the reader did not interpret."""

    messages: list[Message]
    line: int | None = None
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """One raw text document (continued pre-training); ``source`` is its file."""

    text: str
    source: str
