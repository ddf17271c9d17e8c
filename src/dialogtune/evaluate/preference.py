"""Scoring a preference run on held-out pairs: ``preference_accuracy`` (the share of pairs
whose margin is above 0) and ``mean_margin``; with held-out dialogues, the chat metrics of
``evaluate/chat.py`` (perplexity, the ``grounding`` block) beside them.

The margin is what the run's method optimises (``models.preference.pair_margins``): for
DPO and KTO the chosen reply's log-ratio to the reference minus the rejected one's (the
reference is the run with its adapter switched off, i.e. the model it started from); for
ORPO and SimPO the difference in mean token log-probability. Unpaired (KTO) rows of a
held-out file have no margin: they are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.encode.preference import EncodedPreference, collate_preferences
from ..errors import DialogtuneError
from ..models.devices import on_model_device
from ..models.preference import (Method, method_loss, pair_margins, reference_logps,
                                 sequence_logps, shares_context)

PAIRS_PER_FORWARD = 4


def preference_metrics(margins: list[float]) -> dict:
    """Accuracy (margin > 0) and mean margin over pairs (NaN for none)."""
    if not margins:
        return {"preference_accuracy": float("nan"), "mean_margin": float("nan"), "pairs": 0}
    return {"preference_accuracy": sum(m > 0 for m in margins) / len(margins),
            "mean_margin": sum(margins) / len(margins), "pairs": len(margins)}


@torch.no_grad()
def score_pairs(model: nn.Module, items: list[EncodedPreference], method: Method, beta: float,
                pad_id: int) -> tuple[list[float], float]:
    """(margin of every pair, mean loss per pair) of ``items`` (pairs only)."""
    was_training = model.training
    model.eval()
    margins: list[float] = []
    total = 0.0
    for start in range(0, len(items), PAIRS_PER_FORWARD):
        chunk = items[start:start + PAIRS_PER_FORWARD]
        batch = collate_preferences(chunk, pad_id, shares_context(model))
        batch = on_model_device(batch, model)
        policy = sequence_logps(model, batch)
        reference = reference_logps(model, batch) if method.uses_reference else None
        margins += pair_margins(method, policy, reference).tolist()
        total += float(method_loss(method, policy, reference, beta)) * len(chunk)
    model.train(was_training)
    return margins, total / max(1, len(items))


def validation_metrics(model: nn.Module, items: list[EncodedPreference], method: Method,
                       beta: float, pad_id: int) -> dict:
    """The training loop's epoch metrics on held-out pairs (accuracy, margin, loss)."""
    margins, loss = score_pairs(model, items, method, beta, pad_id)
    return {**preference_metrics(margins), "loss": loss}


def evaluate_preference(run: Path, data: str, output: Path | None, base: bool, policy=None,
                        oos_threshold: float | None = None, tools: str | None = None,
                        chat_data: str | None = None) -> dict:
    """``dialogtune eval`` for preference runs: metrics JSON (and, with ``chat_data``, the
    chat metrics and their side-by-side beside it)."""
    from ..checkpoint import write_json_atomic
    from ..config import read_run_config
    from ..data.encode.preference import encode_preferences
    from ..data.formats.preference import read_preferences
    from ..inference.chat_run import load_chat_run
    from ..models.loading import LoadPolicy
    from ..models.preference import resolved_method
    from ..runs.layout import RunDir

    if base or oos_threshold is not None:
        raise DialogtuneError("--base and --oos-threshold do not apply to preference runs (the "
                              "reference of DPO and KTO is the model the run started from)")
    cfg = read_run_config(run)
    policy = (policy or LoadPolicy()).for_run(cfg, run)
    output = Path(output) if output else RunDir(Path(run)).eval.named_metrics("tuned")
    method, beta, _ = resolved_method(cfg.train.method, cfg.train.beta, cfg.train.sft_weight)
    records = read_preferences(data, tools or cfg.data.tools).preferences
    paired = [r for r in records if r.paired]
    model, tokenizer, _, _ = load_chat_run(run, merge=False, policy=policy)  # keep the adapter
    items, stats = encode_preferences(tokenizer, paired, cfg.data.max_length)
    margins, loss = score_pairs(model, items, method, beta, tokenizer.pad_token_id or 0)
    del model  # one model in memory at a time
    metrics = {"method": method.name, **preference_metrics(margins), "loss": loss,
               "unpaired_skipped": len(records) - len(paired), "dropped": stats["dropped"]}
    if chat_data:
        from .chat import evaluate_run_on

        chat = evaluate_run_on(Path(run), chat_data, output.with_name(output.stem + "_chat.json"),
                               False, 40, 48, policy, tools=tools)
        metrics.update({k: v for k, v in chat.items() if k not in ("data", "model")},
                       chat_data=str(chat_data))
    metrics.update(model="tuned", data=str(data))
    write_json_atomic(metrics, output)
    return metrics
