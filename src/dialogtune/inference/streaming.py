"""What a streamed generation needs besides the model: the signal that stops it early and
the text filters applied to its pieces (stop strings, a marker split across pieces)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import torch


class StopSignal:
    """Why a generation should stop early: the consumer left (``local``), the caller
    cancelled (``cancel``, e.g. the HTTP client disconnected) or the ``deadline`` passed."""

    def __init__(self, local: threading.Event, cancel: threading.Event | None = None,
                 deadline: float | None = None):
        self.local, self.cancel, self.deadline = local, cancel, deadline

    def __call__(self) -> bool:
        return (self.local.is_set() or (self.cancel is not None and self.cancel.is_set())
                or (self.deadline is not None and time.monotonic() >= self.deadline))

    def criterion(self):
        """This signal as a ``transformers`` stopping criterion, checked after every token."""
        from transformers import StoppingCriteria

        signal = self

        class _Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
                return torch.full((input_ids.shape[0],), signal(), dtype=torch.bool,
                                  device=input_ids.device)

        return _Halt()


def partial_marker(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that begins ``marker`` (held back: the next
    piece may complete it)."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def cut_at_stop(pieces: Iterator[str], stops: list[str]) -> Iterator[str]:
    """Pass text through until a stop string appears; hold back a possible partial match."""
    if not stops:
        yield from pieces
        return
    buffer, hold = "", max(len(s) for s in stops) - 1
    for piece in pieces:
        buffer += piece
        hits = [buffer.find(s) for s in stops if s in buffer]
        if hits:
            yield buffer[:min(hits)]
            return  # the caller stops the generating thread
        if len(buffer) > hold:
            yield buffer[:len(buffer) - hold]
            buffer = buffer[len(buffer) - hold:]
    if buffer:
        yield buffer
