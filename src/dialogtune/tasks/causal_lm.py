"""Chat SFT and continued pre-training: data → model → strategy → train → run directory.

The same shape as the intent pipeline and the same training loop (``train.fit``); what
differs is the data (dialogues through the chat template with assistant-only labels, or
document blocks) and the loss (``lm.lm_loss``: LM head on trained positions only).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..checkpoint import save_tensors, trainable_state, write_json_atomic
from ..config import RunConfig, save_config
from ..data.chat import EncodedDialogue, encode_dialogues
from ..data.chat_batches import lm_batches
from ..data.chat_readers import read_dialogues
from ..data.documents import document_blocks, is_document_path, read_documents
from ..errors import DataError
from ..evaluate.plots import plot_training_curves
from ..lm import lm_loss, load_lm, token_nll
from ..strategies import apply_strategy, get_strategy, parameter_counts
from ..train import FitResult, Objective, fit
from .fingerprint import check_resume, run_fingerprint
from .layout import RunDir

log = logging.getLogger("dialogtune")

# Chat defaults, applied only to settings the user left unset (intent keeps its own).
# One dialogue per step at lr 1e-3 (one-cycle) for one epoch: measured on SGD to beat larger
# batches at the same compute (more optimizer steps; no padding), see benchmarks/RESULTS.md.
CHAT_TRAIN_DEFAULTS = {"epochs": 1, "batch_size": 1, "label_smoothing": 0.0}
# LoRA on every linear layer with r=16 / alpha 32: the usual chat SFT setting. Dropout off:
# 10-15 % faster steps (peft skips a copy of every adapted input; RESULTS.md, "Chat
# batching"), and one epoch over a few hundred dialogues leaves little to regularize.
CHAT_LORA_DEFAULTS = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0}
PROMPT_LEARNING = ("prompt-tuning", "prefix-tuning", "p-tuning")


def chat_defaults(cfg: RunConfig) -> RunConfig:
    """Fill chat/pretrain defaults into the train and strategy settings not set explicitly."""
    cfg = cfg.resolved()
    if cfg.task == "intent":
        return cfg
    for key, value in CHAT_TRAIN_DEFAULTS.items():
        if key not in cfg.train.model_fields_set:
            setattr(cfg.train, key, value)
    if cfg.strategy.name in ("lora", "dora"):
        for key, value in CHAT_LORA_DEFAULTS.items():
            if key not in cfg.strategy.model_fields_set:
                setattr(cfg.strategy, key, value)
    return cfg


@dataclass
class LMData:
    """Encoded training (and optional validation) sequences plus what encoding reported."""

    train: list[EncodedDialogue]
    validation: list[EncodedDialogue]
    stats: dict = field(default_factory=dict)


def load_lm_data(cfg: RunConfig, tokenizer) -> LMData:
    """Dialogues (task chat) or document blocks (task pretrain), encoded for the model."""
    if not cfg.data.train:
        raise DataError("no training data given (--data)")
    train, stats = encode_path(cfg, tokenizer, cfg.data.train)
    validation = encode_path(cfg, tokenizer, cfg.data.eval)[0] if cfg.data.eval else []
    if not train:
        raise DataError("nothing to train on after masking and truncation", cfg.data.train)
    return LMData(train, validation, stats)


def encode_path(cfg: RunConfig, tokenizer, path: str) -> tuple[list[EncodedDialogue], dict]:
    """Read and encode one data file for ``cfg.task`` (the same way for train and eval)."""
    if cfg.task == "pretrain":
        blocks = document_blocks(tokenizer, read_documents(path), cfg.data.max_length or 256)
        return blocks, {"blocks": len(blocks), "tokens": sum(len(b.input_ids) for b in blocks)}
    if is_document_path(path):
        raise DataError("documents are for continued pre-training: use --task pretrain", path)
    encoded, stats = encode_dialogues(tokenizer, read_dialogues(path, cfg.data.format),
                                      cfg.data.max_length)
    return encoded, stats.as_dict()


@torch.no_grad()
def mean_nll(model, items: list[EncodedDialogue], pad_id: int) -> dict[str, float]:
    """Teacher-forced NLL per trained token over ``items`` (one sequence per forward)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for item in items:
        batch = lm_batches([item], 1, pad_id, 0).collate([0])
        nll, n = token_nll(model, batch)
        total, count = total + float(nll), count + n
    model.train(was_training)
    nll = total / count if count else float("nan")
    return {"nll": nll, "perplexity": math.exp(nll) if count else float("nan"), "tokens": count}


def train_chat(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Fine-tune a causal LM on dialogues or documents; writes the run directory."""
    cfg = chat_defaults(cfg)
    run = RunDir(Path(cfg.output or f"runs/{cfg.task}"))
    fingerprint = run_fingerprint(cfg)
    if resume:
        check_resume(run.path / "checkpoint", fingerprint)
    else:
        run.check_fresh()
    run.path.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run.config)
    set_seed(cfg.train.seed)  # adapters and prompts start random: seed before building them
    model, tokenizer, source = load_lm(cfg.model.name, cfg.model.trust_remote_code,
                                       cfg.model.allow_pickle)
    data = load_lm_data(cfg, tokenizer)
    model = apply_strategy(model, cfg.strategy, cfg.task)
    trainable, total = parameter_counts(model)
    log.info("strategy %s: %s trainable of %s parameters (%.2f%%)", cfg.strategy.name,
             f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    pack = cfg.strategy.name not in PROMPT_LEARNING  # peft drops position_ids for those
    counter: dict[str, int] = {}
    pad_id = tokenizer.pad_token_id or 0
    batches = lm_batches(data.train, cfg.train.batch_size, pad_id, cfg.train.seed, pack,
                         cfg.train.group_by_length, counter)
    validate = (lambda m: mean_nll(m, data.validation, pad_id)) if data.validation else None
    lr = cfg.train.lr or get_strategy(cfg.strategy.name).learning_rate(cfg.task)
    result = fit(model, batches, lm_loss, validate, cfg.train, run.path, lr, None,
                 Objective("nll", higher_is_better=False), resume, callbacks, fingerprint)
    summary = _summary(cfg, source, data, result, trainable, total, counter, lr, pack)
    _write_run(run, model, cfg, result, summary)
    return summary


def _summary(cfg: RunConfig, source: str, data: LMData, result: FitResult, trainable: int,
             total: int, counter: dict, lr: float, pack: bool) -> dict:
    seconds = max(result.train_seconds, 1e-9)
    return {"task": cfg.task, "model": cfg.model.name, "model_source": source,
            "strategy": cfg.strategy.name, "trainable_parameters": trainable,
            "total_parameters": total, "lr": lr, "batch_layout": "pack" if pack else "pad",
            "train_sequences": len(data.train), "validation_sequences": len(data.validation),
            "data": data.stats, "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2),
            "tokens_fed": counter.get("tokens", 0), "tokens_trained": counter.get("trained", 0),
            "tokens_per_second": round(counter.get("tokens", 0) / seconds, 2),
            "trained_tokens_per_second": round(counter.get("trained", 0) / seconds, 2),
            "best_epoch": result.best_epoch, "stopped_early": result.stopped_early}


def _write_run(run: RunDir, model, cfg: RunConfig, result: FitResult, summary: dict) -> None:
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    metrics = {"validation": result.best_metrics, **{k: summary[k] for k in (
        "train_seconds", "trainable_parameters", "total_parameters", "steps",
        "tokens_per_second", "trained_tokens_per_second")}}
    write_json_atomic(metrics, run.metrics)
    write_json_atomic(summary, run.summary)
    plot_training_curves(run.log, run.curves, metric="perplexity")
    # The weights last: their presence marks the run finished (RunDir.require_trained).
    save_tensors(trainable_state(model), run.weights, metadata={"strategy": cfg.strategy.name})


def evaluate_chat(run: Path, data: str, output: Path | None = None, base: bool = False,
                  generate_turns: int = 40, max_new_tokens: int = 48, policy=None) -> dict:
    """Score a chat run (or, with ``base``, the model it started from) on held-out data."""
    from ..evaluate.chat import evaluate_run_on

    return evaluate_run_on(Path(run), data, output, base, generate_turns, max_new_tokens,
                           policy)
