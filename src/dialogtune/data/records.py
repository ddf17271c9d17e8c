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


@dataclass(frozen=True)
class Span:
    """One slot value as character offsets into its text (``end`` exclusive)."""

    slot: str
    start: int
    end: int


@dataclass(frozen=True)
class NluExample:
    """One utterance with its intent and slot spans (joint NLU data).

    ``intent`` is None only where the format has none (a CoNLL sentence without an intent
    line); ``context`` is the text the user answered (the previous assistant turn) when
    the reader was asked to keep it. ``label`` aliases ``intent`` so intent helpers
    (label maps, stratified splits) take these records as they take Utterances.
    """

    text: str
    intent: str | None
    slots: tuple[Span, ...] = ()
    context: str | None = None
    line: int | None = None
    source: str | None = None

    @property
    def label(self) -> str | None:
        return self.intent

    def value(self, span: Span) -> str:
        return self.text[span.start:span.end]


@dataclass
class Preference:
    """A judged reply (preference tuning): ``chosen`` and ``rejected`` are the same context
    followed by the preferred and the dispreferred final assistant turn. A pair has both;
    an unpaired (KTO) row has one: ``chosen`` for a reply labelled good, ``rejected`` for
    one labelled bad. Only the final assistant turn of each is scored."""

    chosen: Dialogue | None
    rejected: Dialogue | None
    line: int | None = None
    source: str | None = None

    @property
    def paired(self) -> bool:
        return self.chosen is not None and self.rejected is not None
