"""A trained NLU run (intent + slots), ready to read utterances: the CLI, the server, eval.

An :class:`NluPredictor` is a :class:`~dialogtune.predictor.Predictor` (same intent
results, same out-of-scope rule) whose results also carry ``slots``: one
``{slot, value, start, end, confidence}`` per predicted span, offsets into the text as
given (end exclusive). Runs trained with ``data.context=previous`` read each text with
the assistant turn before it when one is passed (``contexts``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from torch import nn

from ..checkpoint import load_trainable
from ..config import RunConfig, read_run_config
from ..data.encode.intent import LabelMap
from ..data.encode.slots import SlotLabelMap, SlotPrediction
from ..data.records import NluExample, Span
from ..models.loading import LoadPolicy
from ..models.nlu import load_nlu_model, nlu_probabilities, predict_slots
from .intent import Predictor
from ..runs.layout import RunDir
from ..strategies import CLASSIFIER, apply_strategy


def uses_context(config: RunConfig) -> bool:
    """Whether the run reads the previous assistant turn with each text."""
    return config.data.context == "previous"


class NluPredictor(Predictor):
    """Intent ranking as :class:`Predictor`, plus the slots of each text."""

    def __init__(self, model: nn.Module, tokenizer, labels: LabelMap,
                 slot_labels: SlotLabelMap, config: RunConfig,
                 oos_threshold: float | None = None):
        super().__init__(model, tokenizer, labels, config, oos_threshold)
        self.slot_labels = slot_labels

    @classmethod
    def from_run(cls, run_dir: str | Path, policy: LoadPolicy | None = None) -> "NluPredictor":
        """Load a trained NLU run (``policy`` as for :meth:`Predictor.from_run`)."""
        run = RunDir(Path(run_dir)).require_trained()
        cfg = read_run_config(run.path)
        policy = (policy or LoadPolicy()).for_run(cfg, run.path)
        labels = LabelMap.from_json(run.read_json(run.label_map))
        slots = SlotLabelMap.from_json(run.read_json(run.slot_labels))
        model, tokenizer, _ = load_nlu_model(cfg.model.name, labels.labels, slots,
                                             cfg.model.pooling, cfg.model.dropout,
                                             policy.trust_remote_code, policy.allow_pickle,
                                             cfg.model.add_tokens, cfg.model.slot_decoder)
        model = apply_strategy(model, cfg.strategy, CLASSIFIER)
        load_trainable(model, run.weights)
        summary = run.read_json(run.summary) if run.summary.exists() else {}
        return cls(model, tokenizer, labels, slots, cfg, summary.get("oos_threshold"))

    @property
    def max_length(self) -> int:
        return self.config.data.max_length or 64

    def _contexts(self, texts: list[str], contexts: list[str | None] | None):
        if not uses_context(self.config) or not contexts:
            return None
        if len(contexts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
        return list(contexts)

    def probabilities(self, texts: list[str],
                      contexts: list[str | None] | None = None) -> np.ndarray:
        """Intent probabilities ``[texts, intents]`` (the slot head runs too, unread)."""
        probs, _, _ = nlu_probabilities(self.model, self.tokenizer, texts, self.max_length,
                                        self._contexts(texts, contexts))
        return probs

    def read(self, texts: list[str], contexts: list[str | None] | None = None
             ) -> tuple[np.ndarray, list[list[SlotPrediction]]]:
        """Intent probabilities and each text's slots, in one forward pass."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32), []
        return predict_slots(self.model, self.tokenizer, texts, self.slot_labels,
                             self.max_length, self._contexts(texts, contexts))

    def classify(self, texts: list[str], top_k: int = 3,
                 contexts: list[str | None] | None = None) -> list[dict]:
        """:meth:`Predictor.classify`'s results, each with its ``slots``."""
        started = time.perf_counter()
        probs, slots = self.read(texts, contexts)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(1, len(texts))
        results = self.rank(texts, probs, top_k, elapsed_ms)
        for result, found in zip(results, slots):
            result["slots"] = [s.as_dict() for s in found]
        return results

    def frames(self, texts: list[str], contexts: list[str | None] | None = None
               ) -> list[NluExample]:
        """The predicted frame of each text (best intent + slot spans), as the slot
        metrics (``evaluate.slots``) compare them with gold examples."""
        probs, slots = self.read(texts, contexts)
        return self.to_frames(texts, probs, slots)

    def to_frames(self, texts: list[str], probs: np.ndarray,
                  slots: list[list[SlotPrediction]]) -> list[NluExample]:
        """:meth:`frames` of an already computed :meth:`read`."""
        return [NluExample(text, self.labels.labels[int(row.argmax())],
                           tuple(Span(s.slot, s.start, s.end) for s in found))
                for text, row, found in zip(texts, probs, slots)]
