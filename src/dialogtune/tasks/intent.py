"""The intent task: data → classifier → strategy → train → validation → run directory.

Also its evaluation (``dialogtune eval`` on an intent run) and its ``TASK`` entry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

from ..atomic import write_text_atomic
from ..checkpoint import save_tensors, trainable_state, write_json_atomic
from ..config import DEFAULT_VAL_FRACTION, RunConfig, TrainConfig, read_run_config
from ..data.encode.intent import LabelMap, intent_batches
from ..data.formats import read_intents
from ..data.quality.checks import fast_check_warnings, rare_label_warnings
from ..data.transform.split import stratified_split
from ..errors import DataError, DialogtuneError
from ..evaluate.intent import (
    calibrated_threshold,
    evaluate_intent,
    score_probabilities,
)
from ..evaluate.plots import plot_training_curves
from ..inference.intent import (Predictor, batched_features, batched_probabilities,
                               load_classifier)
from ..inference.onnx import default_eval_dir
from ..models.heads import start_at_prototypes, supervised_contrastive_loss
from ..models.loading import load_intent_model
from ..runs.layout import EvalDir, RunDir
from ..strategies import CLASSIFIER
from ..train import FitResult, Objective, fit
from .base import Task
from .steps import (adapt_model, check_vocabulary, extend_vocabulary, learning_rate,
                    start_run, vocabulary_summary)

log = logging.getLogger("dialogtune")
# The head starts random: measured to need ~20x (train.head_lr_multiplier) full fine-tuning's
# encoder rate, 2e-4 → 4e-3 (benchmarks/RESULTS.md). Anchored to that rate, not to the
# strategy's: LoRA (1e-3) and prompt tuning (3e-2) were measured with the same 4e-3 head.
HEAD_LR_REFERENCE = 2e-4
# A validation split this large a share of the data costs accuracy (see small_data_advice).
SMALL_DATA_HOLD_OUT = 0.15
# Below this many utterances per intent (on average) an intent run with data.val_fraction
# unset trains on every example. Holding out (one utterance of each intent) cost test accuracy
# on BANKING77 (benchmarks/intent_small_data.py, 3 seeds each, every seed the same way):
# 3.5 points at 5 per intent, 2.0 at 7; at 10 it cost 0.55 and at 25 0.5 (2 seeds of 3), small
# enough to keep what the split gives: the best epoch and the out-of-scope threshold.
SMALL_DATA_PER_INTENT = 8


def read_intent_records(cfg: RunConfig, path: str) -> list:
    """The labelled utterances of one file, read with the run's column settings."""
    return read_intents(path, cfg.data.text_column, cfg.data.label_column)


def head_learning_rate(train: TrainConfig) -> float:
    """The intent head's rate: ``head_lr_multiplier`` × the reference encoder rate."""
    return train.head_lr_multiplier * HEAD_LR_REFERENCE


@dataclass
class IntentData:
    train: list
    validation: list
    labels: LabelMap


def load_intent_data(cfg: RunConfig) -> IntentData:
    """Read training data, hold out a stratified validation split unless one is given."""
    data = cfg.data
    if not data.train:
        raise DataError("no training data given (--data)")
    records = read_intent_records(cfg, data.train)
    for warning in rare_label_warnings(records, data.min_examples_warning):
        log.warning(warning)
    validation = read_intents(data.eval, data.text_column, data.label_column,
                              require_labels=1) if data.eval else None
    return split_intent_data(cfg, records, validation, SMALL_DATA_PER_INTENT)


def split_intent_data(cfg: RunConfig, records: list, validation: list | None,
                      all_data_below: float = 0) -> IntentData:
    """Training records and the validation set (given, or held out stratified), checked,
    with the label map of the training part. Any records with ``text`` and ``label``.
    With ``data.val_fraction`` unset, data averaging fewer than ``all_data_below``
    utterances per intent trains on all of them (see ``validation_fraction``)."""
    data = cfg.data
    if validation is not None:
        train = records
    else:
        seed = cfg.train.seed if data.split_seed is None else data.split_seed
        fraction = validation_fraction(data.val_fraction, records, all_data_below)
        train, validation = stratified_split(records, fraction, seed)
        if len(validation) >= SMALL_DATA_HOLD_OUT * len(records):
            log.warning(small_data_advice(len(validation), len(records)))
    # exact normalised-text checks only: fast enough for every run; details: data check
    for warning in fast_check_warnings(records, validation if data.eval else None,
                                       str(data.train), data.eval and str(data.eval)):
        log.warning(warning)
    labels = LabelMap.from_records(train)
    unseen = sorted({r.label for r in validation} - set(labels.labels))
    if unseen:
        log.warning("validation labels absent from training are scored as errors: %s", unseen)
    return IntentData(train, validation, labels)


def validation_fraction(chosen: float | None, records: list, all_data_below: float) -> float:
    """The share held out for validation: ``data.val_fraction`` when set; else none when
    the data averages fewer than ``all_data_below`` utterances per intent, else 10 %."""
    if chosen is not None:
        return chosen
    per_intent = len(records) / max(1, len({r.label for r in records}))
    if per_intent >= all_data_below:
        return DEFAULT_VAL_FRACTION
    log.warning(f"{per_intent:.1f} utterances per intent: training on all of them, with no "
                "validation split (BANKING77 at 5 and 7 per intent, 3 seeds: +3.5 and +2.0 "
                "points of test accuracy), so the last epoch is kept and no out-of-scope "
                "threshold is calibrated: serve --oos-threshold sets one, --set "
                "data.val_fraction=0.1 holds out a split again")
    return 0.0


def small_data_advice(held: int, total: int) -> str:
    """Why and how to train on every example when the validation split is a big share."""
    # benchmarks/intent_small_data.py, BANKING77, 3 seeds: holding out (1 of 5 per intent)
    # cost 3.5 points of test accuracy; at 10 and 25 per intent about 0.5 points.
    return (f"the validation split holds out {held} of {total} training utterances "
            f"({held / total:.0%}); with this little data, --set data.val_fraction=0 trains "
            "on all of them (BANKING77 at 5 per intent: +3.5 points test accuracy) but "
            "calibrates no out-of-scope threshold (serve --oos-threshold sets one)")


def validation_loss(probs, records, labels: LabelMap) -> float:
    """Mean cross-entropy of the true intents (unknown intents skipped)."""
    import numpy as np

    picked = [probs[i, labels.index[r.label]] for i, r in enumerate(records)
              if r.label in labels.index]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0)))) if picked else float("inf")


def intent_validation_metrics(probs, records, labels: LabelMap) -> dict:
    """What each epoch's validation reports for the intent head (and selects on)."""
    scores = score_probabilities(probs, records, labels)
    metrics = {k: scores[k] for k in ("accuracy", "macro_f1", "macro_precision",
                                      "macro_recall")}
    metrics["loss"] = validation_loss(probs, records, labels)
    return metrics


def intent_loss(label_smoothing: float, contrastive_weight: float = 0.0):
    """Cross-entropy of the intents, plus ``contrastive_weight`` x the supervised
    contrastive loss of the batch's sentence embeddings when that weight is set."""
    def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch.pop("labels")
        if not contrastive_weight:
            return F.cross_entropy(model(**batch), labels, label_smoothing=label_smoothing)
        logits, features = model(**batch, return_features=True)
        known = labels >= 0
        return (F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
                + contrastive_weight * supervised_contrastive_loss(features[known],
                                                                   labels[known]))
    return loss


def start_head_at_prototypes(model, tokenizer, data: IntentData, max_length: int) -> None:
    """``model.head_init=prototypes``: the head scores each intent by the cosine to the
    intent's mean embedding of the training utterances, before any training."""
    features = batched_features(model, tokenizer, [r.text for r in data.train], max_length)
    label_ids = torch.tensor([data.labels.index[r.label] for r in data.train])
    start_at_prototypes(model.classifier, torch.from_numpy(features), label_ids)


def train_intent(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Train an intent classifier and write its run directory; returns the run summary."""
    cfg, run, fingerprint = start_run(TASK, cfg, resume)
    data = load_intent_data(cfg)
    write_json_atomic(data.labels.to_json(), run.label_map)
    # The head, adapters and prefixes start random: seed before building them, or two runs
    # with the same seed (or an interrupted run and its uninterrupted twin) diverge.
    set_seed(cfg.train.seed)
    texts = [r.text for r in data.train]
    cfg = extend_vocabulary(cfg, texts, run)
    model, tokenizer, source = load_intent_model(cfg.model.name, data.labels.labels,
                                                 cfg.model.pooling, cfg.model.dropout,
                                                 cfg.model.trust_remote_code,
                                                 cfg.model.allow_pickle, cfg.model.add_tokens,
                                                 cfg.model.head)
    unknown = check_vocabulary(tokenizer, texts, cfg)
    max_length = cfg.data.max_length or 64
    if cfg.model.head_init == "prototypes":
        start_head_at_prototypes(model, tokenizer, data, max_length)
    model, trainable, total = adapt_model(model, cfg, CLASSIFIER)
    batches = intent_batches(tokenizer, data.train, data.labels, max_length,
                             cfg.train.batch_size, cfg.train.seed, cfg.train.group_by_length,
                             per_label=cfg.train.examples_per_label)

    def validate(m) -> dict:
        probs = batched_probabilities(m, tokenizer, [r.text for r in data.validation], max_length)
        return intent_validation_metrics(probs, data.validation, data.labels)

    result = fit(model, batches, intent_loss(cfg.train.label_smoothing,
                                             cfg.train.contrastive_weight),
                 validate if data.validation else None, cfg.train, run.path,
                 learning_rate(cfg, CLASSIFIER), head_learning_rate(cfg.train),
                 TASK.objective, resume, callbacks, fingerprint)
    return write_intent_run(run, model, tokenizer, data, cfg, result, trainable, total,
                             max_length, source, extra=vocabulary_summary(cfg, unknown))


def write_intent_run(run: RunDir, model, tokenizer, data: IntentData, cfg: RunConfig,
                      result: FitResult, trainable: int, total: int, max_length: int,
                      source: str, probabilities=None, extra: dict | None = None) -> dict:
    """Write the run's files (summary, metrics, curves, weights last). ``probabilities``
    (records → intent probabilities; default: the intent classifier's) calibrates the
    out-of-scope threshold; ``extra`` adds task-specific summary fields."""
    from accelerate import PartialState

    if probabilities is None:
        def probabilities(records):
            return batched_probabilities(model, tokenizer, [r.text for r in records],
                                         max_length)
    summary = {"task": cfg.task, "model": cfg.model.name, "model_source": source,
               "strategy": cfg.strategy.name, "trainable_parameters": trainable,
               "total_parameters": total, "train_examples": len(data.train),
               "validation_examples": len(data.validation), "labels": len(data.labels),
               "steps": result.steps, "train_seconds": round(result.train_seconds, 2),
               "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
               "precision": result.precision, **(extra or {}), **result.utilisation}
    if data.validation:
        probs = probabilities(data.validation)
        summary["oos_threshold"] = calibrated_threshold(probs, data.validation, data.labels,
                                                        cfg.train.oos_rule, cfg.train.oos_share)
        summary["oos_rule"] = cfg.train.oos_rule
    if not PartialState().is_main_process:
        return summary
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    # config.json carries id2label / label2id (what save_pretrained writes, made durable)
    write_text_atomic(run.base_config, base.config.to_json_string())
    metrics = {"validation": result.best_metrics, **{k: summary[k] for k in (
        "train_seconds", "trainable_parameters", "total_parameters", "steps")}}
    write_json_atomic(metrics, run.metrics)
    write_json_atomic(summary, run.summary)  # holds the out-of-scope threshold
    plot_training_curves(run.log, run.curves)
    # The weights last: their presence marks the run finished (RunDir.require_trained), so
    # a crash before this line leaves a run to resume, never one served without run.json.
    save_tensors(trainable_state(model), run.weights, metadata={"strategy": cfg.strategy.name})
    return summary


def evaluate_intent_run(run: str | Path, data: str, output: Path | None = None,
                        base: bool = False, oos_threshold: float | None = None,
                        policy=None, tools: str | None = None, backend: str = "torch") -> dict:
    """``dialogtune eval`` on an intent run: metrics (and plots beside them) on ``data``,
    read by the ``backend`` predictor (``torch``, or ``onnx``: the run's ONNX export)."""
    def read(cfg: RunConfig) -> list:
        return read_intents(data, cfg.data.text_column, cfg.data.label_column,
                            require_labels=1)

    return evaluate_classifier_run(run, read, output, base, tools, oos_threshold, policy,
                                   backend)


def evaluate_classifier_run(run: str | Path, read, output: Path | None, base: bool,
                            tools: str | None, oos_threshold: float | None, policy,
                            backend: str, more=None) -> dict:
    """``eval`` on a classifier run (intent, NLU): refuse the chat-only options, read the
    data with the run's settings (``read(cfg)``), score intents with the ``backend``
    predictor, add ``more(predictor, records)`` (NLU: the slot metrics), write the file."""
    if base:
        raise DialogtuneError("--base applies to chat runs: a classifier's heads start random")
    if tools:
        raise DialogtuneError("--tools applies to chat runs")
    records = read(read_run_config(Path(run)))
    predictor = load_classifier(run, policy, backend)
    out = EvalDir(Path(output).parent) if output else default_eval_dir(run, backend)
    metrics = {**evaluate_intent(predictor, records, out.path, oos_threshold), "backend": backend}
    metrics.update(more(predictor, records) if more else {})
    write_json_atomic(metrics, Path(output) if output else out.metrics)
    return metrics


# Defaults other tasks do not share. Epochs follow the data's size (benchmarks/intent_epochs.py,
# RESULTS.md): 4 where they fit in 600 steps, else as many steps, but at least 2 epochs. Two
# epochs suit long ones (BANKING77, 313 steps an epoch: 0.931 vs 0.936 for 3 in two thirds of
# the time; SNIPS, 368: 0.981 vs 0.980) and starve short ones (CrossWOZ intents, 119 steps an
# epoch: 0.652 / 0.864 for two seeds at 2 epochs, 0.889 / 0.895 at 3, 0.912 at 4).
# The 600 lies between those: a boundary from three data sets, not a measured optimum.
DEFAULTS = {"model": {"name": "minilm"}, "strategy": {"name": "full"},
            "data": {"max_length": 64},
            "train": {"epochs": 4, "step_budget": 600, "min_epochs": 2, "min_steps": 100}}
TASK = Task("intent", CLASSIFIER, defaults=DEFAULTS,
            train=train_intent, evaluate=evaluate_intent_run, load_predictor=Predictor.from_run,
            read_data=read_intent_records, objective=Objective("accuracy", tie_breaker="loss"))
