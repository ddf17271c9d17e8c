"""Intent reading for the server: batched probabilities → ranked intents with a fallback.

The out-of-scope rule lives here so the intents route and the chat pipeline agree on it:
when the best probability is under the threshold, the reported intent is the fallback
intent (e.g. ``out_of_scope``) and ``out_of_scope`` is true; the ranking is still returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..resources import ThreadGovernor
from .errors import APIError
from .workers import MicroBatcher, QueueFull


# How often the generation threads re-measure the others' load: a reply takes seconds, and
# a /proc/stat read is ~50 us, so this costs nothing and follows a job within one reply.
REMEASURE_SECONDS = 5.0


def torch_threads(count: int | None,
                  governor: ThreadGovernor | None = None) -> Callable[[], None]:
    """A setup step giving the calling thread ``count`` torch threads (None: the cores other
    processes leave idle, re-measured every ``REMEASURE_SECONDS``).

    torch's thread count is per OS thread (new threads start from the last value set), so
    each worker calls it: one thread for short utterances (lower latency when the cores
    are shared with generation), the free cores for generation. Generating with all cores
    beside another busy job slowed both 5-20x (measured for training, resources.py); the
    load is measured like ``train``'s, our own process's CPU time left out.
    """
    if count:
        def fixed() -> None:
            torch.set_num_threads(count)  # also the default of threads started after this
        return fixed
    governor = governor or ThreadGovernor(every_seconds=REMEASURE_SECONDS)

    def follow_the_load() -> None:
        governor.decide()
        if torch.get_num_threads() != governor.count:
            torch.set_num_threads(governor.count)

    return follow_the_load


def intent_model_name(predictor) -> str:
    """A stable, human-readable name for an intent run (its folder name)."""
    output = getattr(getattr(predictor, "config", None), "output", None)
    return Path(output).name if output else "intent"


class IntentEngine:
    """Classifies utterances through a micro-batching worker thread."""

    def __init__(self, predictor, threshold: float | None, fallback_intent: str,
                 max_batch: int = 64, threads: int | None = 1, max_queue: int = 256):
        self.predictor, self.fallback_intent = predictor, fallback_intent
        self.threshold = threshold if threshold is not None else predictor.oos_threshold
        self.labels: list[str] = list(predictor.labels.labels)
        self.name = intent_model_name(predictor)
        # NLU runs (a predictor that reads slots too) answer slots beside the intents
        self.slots = hasattr(predictor, "slot_labels")
        self._batcher = MicroBatcher(self._probabilities, max_batch, torch_threads(threads),
                                     max_queue)

    def start(self) -> None:
        self._batcher.start()

    def stop(self) -> None:
        self._batcher.stop()

    def _probabilities(self, items: list[tuple[str, str | None]]) -> list:
        """One forward pass for a micro-batch of (text, context) (on the batcher thread):
        each text's probabilities, or (probabilities, slots) for an NLU run."""
        texts = [text for text, _ in items]
        with torch.inference_mode():
            if not self.slots:
                return list(self.predictor.probabilities(texts))
            probs, slots = self.predictor.read(texts, [context for _, context in items])
            return list(zip(probs, slots))

    async def read(self, texts: list[str], top_k: int,
                   contexts: list[str | None] | None = None) -> list[dict]:
        """Ranked intents for each text: intent, confidence, out_of_scope, intents, latency;
        and ``slots`` for an NLU run (``contexts``: the assistant turn each text answers,
        read by runs trained with it)."""
        started = time.perf_counter()
        try:
            rows = await self._batcher.submit(list(zip(texts, contexts or [None] * len(texts))))
        except QueueFull:
            raise APIError(429, "the server is busy: too many intent requests are waiting; "
                           "retry", "queue_full") from None
        latency_ms = (time.perf_counter() - started) * 1000
        if not self.slots:
            return [self.rank(text, row, top_k, latency_ms) for text, row in zip(texts, rows)]
        return [{**self.rank(text, row, top_k, latency_ms),
                 "slots": [s.as_dict() for s in found]}
                for text, (row, found) in zip(texts, rows)]

    def rank(self, text: str, row: np.ndarray, top_k: int, latency_ms: float = 0.0) -> dict:
        best = np.argsort(-row)[:max(1, top_k)]
        ranked = [{"intent": self.labels[i], "probability": float(row[i])} for i in best]
        confidence = ranked[0]["probability"]
        oos = self.threshold is not None and confidence < self.threshold
        return {"text": text, "intent": self.fallback_intent if oos else ranked[0]["intent"],
                "confidence": confidence, "out_of_scope": bool(oos), "intents": ranked,
                "latency_ms": round(latency_ms, 3)}
