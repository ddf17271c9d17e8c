"""What the causal-LM tasks (chat SFT, continued pre-training) share: data → model →
strategy → train → run directory, their defaults and their evaluation.

The same shape as the intent task and the same training loop (``train.fit``); what
differs is the data (each task's ``encode``: dialogues through the chat template with
assistant-only labels, or document blocks) and the loss (``lm.lm_loss``: LM head on
trained positions only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from accelerate.utils import set_seed

from ..checkpoint import save_tensors, trainable_state, write_json_atomic
from ..config import RunConfig
from ..data.encode.chat import EncodedDialogue
from ..data.encode.chat_batches import lm_batches
from ..errors import DataError, DialogtuneError
from ..evaluate.plots import plot_training_curves
from ..models.lm import lm_loss, load_lm, mean_nll
from ..runs.layout import RunDir
from ..strategies import CAUSAL_LM, get_strategy
from ..train import FitResult, Objective, fit

# Causal LMs keep the epoch with the lowest validation loss (mean token NLL).
LM_OBJECTIVE = Objective("nll", higher_is_better=False)
from .base import Task
from .steps import adapt_model, learning_rate, start_run

log = logging.getLogger("dialogtune")

# One data file, encoded for the model: (sequences, what encoding reported).
Encode = Callable[[RunConfig, object, str], tuple[list[EncodedDialogue], dict]]
# One dialogue per step at lr 1e-3 (one-cycle) for one epoch: measured on SGD to beat larger
# batches at the same compute (more optimizer steps; no padding), see benchmarks/RESULTS.md.
LM_TRAIN_DEFAULTS = {"epochs": 1, "batch_size": 1, "label_smoothing": 0.0}
# LoRA on every linear layer with r=16 / alpha 32: the usual chat SFT setting. Dropout off:
# 10-15 % faster steps (peft skips a copy of every adapted input; RESULTS.md, "Chat
# batching"), and one epoch over a few hundred dialogues leaves little to regularize.
# (Filled only into the strategies that read them: lora and dora.)
LM_STRATEGY_DEFAULTS = {"name": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0}


def lm_defaults(max_length: int) -> dict:
    """The defaults of a causal-LM task whose sequences hold up to ``max_length`` tokens."""
    return {"model": {"name": "smollm2"}, "strategy": LM_STRATEGY_DEFAULTS,
            "data": {"max_length": max_length}, "train": LM_TRAIN_DEFAULTS}


@dataclass
class LMData:
    """Encoded training (and optional validation) sequences plus what encoding reported."""

    train: list[EncodedDialogue]
    validation: list[EncodedDialogue]
    stats: dict = field(default_factory=dict)


def load_lm_data(cfg: RunConfig, tokenizer, encode: Encode) -> LMData:
    """The training (and validation) files, each encoded by the task's ``encode``."""
    if not cfg.data.train:
        raise DataError("no training data given (--data)")
    train, stats = encode(cfg, tokenizer, cfg.data.train)
    validation = encode(cfg, tokenizer, cfg.data.eval)[0] if cfg.data.eval else []
    if not train:
        raise DataError("nothing to train on after masking and truncation", cfg.data.train)
    return LMData(train, validation, stats)


def train_lm(task: Task, encode: Encode, cfg: RunConfig, resume: bool = False,
             callbacks=()) -> dict:
    """Fine-tune a causal LM on what ``encode`` makes of the data; writes the run directory."""
    cfg, run, fingerprint = start_run(task, cfg, resume)
    set_seed(cfg.train.seed)  # adapters and prompts start random: seed before building them
    model, tokenizer, source = load_lm(cfg.model.name, cfg.model.trust_remote_code,
                                       cfg.model.allow_pickle)
    data = load_lm_data(cfg, tokenizer, encode)
    model, trainable, total = adapt_model(model, cfg, CAUSAL_LM)
    # peft drops position_ids for prompt learning: no packed sequences then
    pack = not get_strategy(cfg.strategy.name).prompt_learning
    counter: dict[str, int] = {}
    pad_id = tokenizer.pad_token_id or 0
    batches = lm_batches(data.train, cfg.train.batch_size, pad_id, cfg.train.seed, pack,
                         cfg.train.group_by_length, counter)
    validate = (lambda m: mean_nll(m, data.validation, pad_id)) if data.validation else None
    lr = learning_rate(cfg, CAUSAL_LM)
    result = fit(model, batches, lm_loss, validate, cfg.train, run.path, lr, None,
                 task.objective, resume, callbacks, fingerprint)
    summary = _summary(cfg, source, data, result, trainable, total, counter, lr, pack)
    write_lm_run(run, model, cfg, result, summary)
    return summary


def _summary(cfg: RunConfig, source: str, data: LMData, result: FitResult, trainable: int,
             total: int, counter: dict, lr: float, pack: bool) -> dict:
    return {"task": cfg.task, "model": cfg.model.name, "model_source": source,
            "strategy": cfg.strategy.name, "trainable_parameters": trainable,
            "total_parameters": total, "lr": lr, "batch_layout": "pack" if pack else "pad",
            "train_sequences": len(data.train), "validation_sequences": len(data.validation),
            "data": data.stats, **loop_summary(result, counter)}


def loop_summary(result: FitResult, counter: dict[str, int]) -> dict:
    """What the training loop did (shared by the causal-LM tasks' run.json): steps, time,
    tokens fed and trained (``counter``'s totals) and per second, the best epoch, the
    precision and the utilisation."""
    seconds = max(result.train_seconds, 1e-9)
    return {"steps": result.steps, "train_seconds": round(result.train_seconds, 2),
            "tokens_fed": counter.get("tokens", 0), "tokens_trained": counter.get("trained", 0),
            "tokens_per_second": round(counter.get("tokens", 0) / seconds, 2),
            "trained_tokens_per_second": round(counter.get("trained", 0) / seconds, 2),
            "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "precision": result.precision, **result.utilisation}


def write_lm_run(run: RunDir, model, cfg: RunConfig, result: FitResult, summary: dict,
                 curve_metric: str = "perplexity") -> None:
    """metrics.json, run.json, the training curves and (last) the trained weights."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    metrics = {"validation": result.best_metrics, **{k: summary[k] for k in (
        "train_seconds", "trainable_parameters", "total_parameters", "steps",
        "tokens_per_second", "trained_tokens_per_second")}}
    write_json_atomic(metrics, run.metrics)
    write_json_atomic(summary, run.summary)
    plot_training_curves(run.log, run.curves, metric=curve_metric)
    # The weights last: their presence marks the run finished (RunDir.require_trained).
    save_tensors(trainable_state(model), run.weights, metadata={"strategy": cfg.strategy.name})


def evaluate_lm(run: Path, data: str, output: Path | None = None, base: bool = False,
                generate_turns: int = 40, max_new_tokens: int = 48, policy=None,
                oos_threshold: float | None = None, documents: bool = False,
                tools: str | None = None, backend: str = "torch") -> dict:
    """Score a causal-LM run (or, with ``base``, the model it started from) on held-out
    data; ``documents``: the run learned documents (perplexity over document blocks)."""
    from ..evaluate.chat import evaluate_run_on

    if oos_threshold is not None:
        raise DialogtuneError("--oos-threshold applies to intent runs")
    if backend != "torch":
        raise DialogtuneError(f"--backend {backend} applies to intent and NLU runs")
    return evaluate_run_on(Path(run), data, output, base, generate_turns, max_new_tokens,
                           policy, documents, tools)
