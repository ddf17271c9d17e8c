"""The NLU task: joint intent + slot training (one encoder, two heads), its evaluation and
its ``TASK`` entry.

Built from the intent task's pieces: the same validation split, data checks, label map,
head learning rate, best-epoch selection, out-of-scope calibration and run files
(``tasks.intent``), plus the slot label map (``slot_labels.json``). Data: any of the
four NLU formats (``data.formats.nlu``: JSONL with slots, Rasa YAML, dialogue JSONL user
turns, CoNLL BIO); ``data.context=previous`` reads each dialogue user turn with the
assistant turn before it, in training and wherever the run is used.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from accelerate.utils import set_seed

from ..checkpoint import write_json_atomic
from ..config import RunConfig
from ..data.encode.nlu import nlu_batches
from ..data.encode.slots import SlotLabelMap
from ..data.formats.nlu import detect_nlu, read_nlu_examples
from ..data.quality.checks import rare_label_warnings
from ..errors import ConfigError, DataError
from ..evaluate.slots import sentence_accuracy, slot_report, slot_scores
from ..inference.nlu import NluPredictor, uses_context
from ..models.nlu import load_nlu_model, nlu_loss
from ..strategies import CLASSIFIER
from ..train import Objective, fit
from .base import Task
from .intent import DEFAULTS as INTENT_DEFAULTS
from .intent import (
    evaluate_classifier_run,
    head_learning_rate,
    intent_validation_metrics,
    split_intent_data,
    write_intent_run,
)
from .steps import (adapt_model, check_vocabulary, extend_vocabulary, learning_rate,
                    start_run, vocabulary_summary)

log = logging.getLogger("dialogtune")
# The intent of examples whose format has none (a CoNLL sentence without '# intent:'):
# a slot-only data set trains a one-intent model.
NO_INTENT = "none"


def read_nlu_records(cfg: RunConfig, path: str) -> list:
    """The NLU examples of one file (any of the four formats), with the run's settings."""
    fmt = cfg.data.format if cfg.data.format not in (None, "auto") else "auto"
    examples = read_nlu_examples(path, fmt=fmt, context=uses_context(cfg),
                                 text_column=cfg.data.text_column,
                                 intent_column=cfg.data.label_column)
    return [e if e.intent is not None else replace(e, intent=NO_INTENT) for e in examples]


def train_nlu(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Train a joint intent + slot model and write its run directory; returns the summary."""
    cfg, run, fingerprint = start_run(TASK, cfg, resume)
    if not cfg.data.train:
        raise DataError("no training data given (--data)")
    _check_decoder(cfg)
    records = read_nlu_records(cfg, cfg.data.train)
    _hint_context(cfg)
    for warning in rare_label_warnings(records, cfg.data.min_examples_warning):
        log.warning(warning)
    given = read_nlu_records(cfg, cfg.data.eval) if cfg.data.eval else None
    data = split_intent_data(cfg, records, given)
    slots = SlotLabelMap.from_examples(data.train)
    if not slots.slots:
        log.warning("the training data has no slot spans: the slot head learns only 'O'")
    write_json_atomic(data.labels.to_json(), run.label_map)
    write_json_atomic(slots.to_json(), run.slot_labels)
    set_seed(cfg.train.seed)  # before the heads and adapters are built (see tasks.intent)
    texts = [r.text for r in data.train]
    cfg = extend_vocabulary(cfg, texts, run)
    model, tokenizer, source = load_nlu_model(cfg.model.name, data.labels.labels, slots,
                                              cfg.model.pooling, cfg.model.dropout,
                                              cfg.model.trust_remote_code,
                                              cfg.model.allow_pickle, cfg.model.add_tokens,
                                              cfg.model.slot_decoder)
    unknown = check_vocabulary(tokenizer, texts, cfg)
    model, trainable, total = adapt_model(model, cfg, CLASSIFIER)
    max_length = cfg.data.max_length or 64
    batches = nlu_batches(tokenizer, data.train, data.labels, slots, max_length,
                          cfg.train.batch_size, cfg.train.seed, cfg.train.group_by_length,
                          use_context=uses_context(cfg),
                          all_subwords=cfg.data.slot_labels == "all")

    def predictor(m) -> NluPredictor:
        return NluPredictor(m, tokenizer, data.labels, slots, cfg)

    def probabilities(items):
        return predictor(model).probabilities([r.text for r in items],
                                              [r.context for r in items])

    validate = _validator(predictor, data)

    # sentence accuracy (intent and every slot right) picks the epoch; ties: intent loss
    result = fit(model, batches, nlu_loss(cfg.train.label_smoothing),
                 validate, cfg.train, run.path,
                 learning_rate(cfg, CLASSIFIER), head_learning_rate(cfg.train),
                 TASK.objective, resume, callbacks,
                 fingerprint)
    return write_intent_run(run, model, tokenizer, data, cfg, result, trainable, total,
                             max_length, source, probabilities,
                             {"slot_types": len(slots.slots), **vocabulary_summary(cfg, unknown)})


def _check_decoder(cfg: RunConfig) -> None:
    """A CRF learns transitions between the units it decodes (each word's first piece);
    labels on every piece would teach it transitions inside words that decoding never
    walks, so the two settings are refused together."""
    if cfg.model.slot_decoder == "crf" and cfg.data.slot_labels == "all":
        raise ConfigError("model.slot_decoder=crf reads first-piece labels; it does not go "
                          "with data.slot_labels=all")


def _hint_context(cfg: RunConfig) -> None:
    """Dialogue turns read alone lose the question they answer. Measured with
    benchmarks/nlu_context_sgd.py (RESULTS.md): the previous assistant turn as context took
    SGD restaurants from 0.875 to 0.925 sentence accuracy (banks: 0.965 → 0.968) for twice
    the training time. Off unless asked: a run trained with context expects it when used."""
    if not uses_context(cfg) and detect_nlu(cfg.data.train)[0] == "dialogue":
        log.warning("dialogue turns without their context: --set data.context=previous "
                    "measured +5 points of sentence accuracy on SGD restaurants (RESULTS.md)")


def _validator(predictor, data):
    """The per-epoch validation: intent metrics, slot scores and sentence accuracy of the
    held-out examples (None without any)."""
    if not data.validation:
        return None
    texts = [r.text for r in data.validation]
    contexts = [r.context for r in data.validation]

    def validate(model) -> dict:
        was_training = model.training
        reader = predictor(model)  # puts the model in eval mode
        probs, found = reader.read(texts, contexts)
        frames = reader.to_frames(texts, probs, found)
        model.train(was_training)
        metrics = intent_validation_metrics(probs, data.validation, data.labels)
        metrics.update(slot_scores(data.validation, frames))
        metrics["sentence_accuracy"] = sentence_accuracy(data.validation, frames)
        return metrics

    return validate


def evaluate_nlu_run(run: str | Path, data: str, output: Path | None = None,
                     base: bool = False, oos_threshold: float | None = None,
                     policy=None, tools: str | None = None, backend: str = "torch") -> dict:
    """``dialogtune eval`` on an NLU run: every intent metric, then the slot metrics
    (``slot_f1``, ``slot_precision``, ``slot_recall``, ``sentence_accuracy``,
    ``per_slot``, ``slot_errors``); ``backend`` as for ``evaluate_intent_run``."""
    def slot_metrics(predictor, records: list) -> dict:
        frames = predictor.frames([r.text for r in records], [r.context for r in records])
        return slot_report(records, frames)

    return evaluate_classifier_run(run, lambda cfg: read_nlu_records(cfg, data), output, base,
                                   tools, oos_threshold, policy, backend, slot_metrics)


# Defaults: the intent task's (measured on BANKING77) except the length. The slot head
# needs more passes than an intent head: on SNIPS (benchmarks/nlu_snips.py, RESULTS.md) the
# validation slot F1 / sentence accuracy still rose through epoch 4 and were flat at 5
# (0.959 / 0.900 → 0.959 / 0.899); test slot F1 0.945 after 2 epochs, 0.957 after 4. So the
# intent task's step budget (600 steps, at least 2 epochs) is not inherited: it cut SNIPS
# (409 steps an epoch) back to 2 epochs. Small data is governed by min_steps, as for intents.
NLU_TRAIN_DEFAULTS = {**INTENT_DEFAULTS["train"], "epochs": 4, "step_budget": 0}
TASK = Task("nlu", CLASSIFIER,
            defaults={**INTENT_DEFAULTS, "train": NLU_TRAIN_DEFAULTS},
            train=train_nlu, evaluate=evaluate_nlu_run, load_predictor=NluPredictor.from_run,
            read_data=read_nlu_records,
            objective=Objective("sentence_accuracy", tie_breaker="loss"))
