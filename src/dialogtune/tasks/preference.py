"""The preference task: DPO, ORPO, KTO or SimPO (``train.method``) on judged replies to
multi-turn, tool-calling dialogues, starting from a chat (SFT) run or a base model.

The same steps as chat SFT (``steps.py``), the same strategies (LoRA by default) and the
same training loop (``train.fit``); what differs is the data (``data/formats/preference``,
``data/encode/preference``: only the final assistant turn is scored) and the loss
(``models/preference.py``). DPO and KTO compare with a reference: the model with its
adapter switched off, so a strategy that trains the weights themselves (``full``,
``freeze``) is refused for them. A run is a chat run to every other verb (``chat``,
``serve``, ``export``): its ``model.name`` may itself be the SFT run it started from.
"""

from __future__ import annotations

from pathlib import Path

from accelerate.utils import set_seed

from ..config import RunConfig
from ..data.encode.preference import encode_preferences, preference_batches
from ..data.formats.preference import read_preferences
from ..errors import ConfigError, DataError, DialogtuneError
from ..evaluate.preference import evaluate_preference, validation_metrics
from ..inference.chat import ChatPredictor
from ..inference.chat_run import load_start
from ..models.loading import LoadPolicy
from ..models.preference import (has_reference, preference_loss, resolved_method,
                                 shares_context)
from ..strategies import CAUSAL_LM
from ..train import Objective, fit
from .base import Task
from .causal_lm import lm_defaults, loop_summary, write_lm_run
from .chat import CHAT_MAX_LENGTH
from .steps import adapt_model, learning_rate, start_run

# The epoch with the most held-out pairs ordered right; ties go to the lower loss.
PREFERENCE_OBJECTIVE = Objective("preference_accuracy", tie_breaker="loss")


def read_preference_records(cfg: RunConfig, path: str) -> list:
    """The preference records of one file, the run's ``data.tools`` given to those without."""
    return read_preferences(path, cfg.data.tools).preferences


def load_records(cfg: RunConfig, path: str, needs_pairs: bool) -> list:
    """Records of ``path``; methods that compare pairs refuse an unpaired (KTO) row."""
    records = read_preference_records(cfg, path)
    if needs_pairs:
        lone = next((r for r in records if not r.paired), None)
        if lone is not None:
            raise DataError(f"{cfg.train.method} needs pairs ('chosen' and 'rejected'); this "
                            "row has one labelled reply: train it with --method kto",
                            path, lone.line, "completion")
    return records


def encoded_data(cfg: RunConfig, tokenizer, needs_pairs: bool) -> tuple[list, dict, list | None]:
    """(training records encoded, what encoding reported, validation pairs or None)."""
    if not cfg.data.train:
        raise DataError("no training data given (--data)")
    train, stats = encode_preferences(tokenizer, load_records(cfg, cfg.data.train, needs_pairs),
                                      cfg.data.max_length)
    if not train:
        raise DataError("no preference record fits data.max_length", cfg.data.train)
    held_out = None
    if cfg.data.eval:  # margins need pairs: a validation file's unpaired rows are left out
        pairs = [r for r in read_preference_records(cfg, cfg.data.eval) if r.paired]
        held_out = encode_preferences(tokenizer, pairs, cfg.data.max_length)[0]
        if not held_out:
            raise DataError("validation needs pairs ('chosen' and 'rejected') that fit "
                            "data.max_length", cfg.data.eval)
    return train, stats, held_out


def train_preference(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Preference-tune a causal LM; writes the run directory (a chat run)."""
    cfg, run, fingerprint = start_run(TASK, cfg, resume)
    method, beta, sft_weight = resolved_method(cfg.train.method, cfg.train.beta,
                                               cfg.train.sft_weight)
    set_seed(cfg.train.seed)
    policy = LoadPolicy(cfg.model.trust_remote_code, cfg.model.allow_pickle)
    model, tokenizer, source = load_start(cfg.model.name, policy)
    train, stats, held_out = encoded_data(cfg, tokenizer, method.needs_pairs)
    model, trainable, total = adapt_model(model, cfg, CAUSAL_LM)
    if method.uses_reference and not has_reference(model):
        raise ConfigError(f"{method.name} compares with the model's adapter switched off; the "
                          f"'{cfg.strategy.name}' strategy has no adapter (use lora, dora, "
                          "ia3, or --method orpo / simpo, which need no reference)")
    pad_id = tokenizer.pad_token_id or 0
    counter: dict[str, int] = {}
    batches = preference_batches(train, cfg.train.batch_size, pad_id, cfg.train.seed,
                                 shares_context(model), cfg.train.group_by_length, counter)
    validate = None if held_out is None else (
        lambda m: validation_metrics(m, held_out, method, beta, pad_id))
    lr = learning_rate(cfg, CAUSAL_LM)
    result = fit(model, batches, preference_loss(method, beta, sft_weight), validate,
                 cfg.train, run.path, lr, None, TASK.objective, resume, callbacks, fingerprint)
    summary = {"task": cfg.task, "method": method.name, "beta": beta,
               "sft_weight": sft_weight, "model": cfg.model.name,
               "model_source": source, "strategy": cfg.strategy.name,
               "trainable_parameters": trainable, "total_parameters": total, "lr": lr,
               "data": stats,
               **loop_summary(result, counter),
               # the tokens the forward ran over: a shared row holds its context once
               "tokens_computed": counter.get("computed", 0)}
    write_lm_run(run, model, cfg, result, summary, curve_metric="preference_accuracy")
    return summary


# 4 records a step: the losses compare replies across a batch (KTO's reference point is the
# batch's mean log-ratio). lr 1e-4, a tenth of LoRA's SFT rate (1e-3, measured for SFT):
# preference steps move a model that is already tuned, as DPO's usual LoRA rates (5e-5 to
# 1e-4) do. Neither is measured here yet; benchmarks/preference_sgd.py is where to.
PREFERENCE_TRAIN_DEFAULTS = {"epochs": 1, "batch_size": 4, "lr": 1e-4, "label_smoothing": 0.0}


def _defaults() -> dict:
    defaults = lm_defaults(max_length=CHAT_MAX_LENGTH)
    return {**defaults, "train": PREFERENCE_TRAIN_DEFAULTS}


def evaluate_run(run: str | Path, data: str, output: Path | None = None, base: bool = False,
                 policy=None, oos_threshold: float | None = None, tools: str | None = None,
                 chat_data: str | None = None, backend: str = "torch") -> dict:
    """Preference accuracy and mean margin on held-out pairs; with ``chat_data``, the chat
    metrics (perplexity, grounding) on held-out dialogues too."""
    if backend != "torch":
        raise DialogtuneError(f"--backend {backend} applies to intent and NLU runs")
    return evaluate_preference(Path(run), data, output, base, policy, oos_threshold, tools,
                               chat_data)


TASK = Task("preference", CAUSAL_LM, defaults=_defaults(), train=train_preference,
            evaluate=evaluate_run, load_predictor=ChatPredictor.from_run,
            read_data=read_preference_records, objective=PREFERENCE_OBJECTIVE)
