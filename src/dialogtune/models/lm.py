"""Causal-LM loss on trained positions only, shared by training and evaluation.

On a small model the vocabulary projection dominates: SmolLM2-135M has a 49k-token LM head,
so full logits cost ~20 % of the matmul work plus a (tokens × 49k) softmax and its gradient.
Only positions whose next token is trained need logits, so the hidden states are selected
*before* the LM head through transformers' ``logits_to_keep`` (a boolean mask keeps exactly
those positions). That works through peft wrappers, which pass keyword arguments on; when
peft prepends virtual tokens (prompt / p-tuning) the mask is shifted to match.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn

from .devices import on_model_device

IGNORE = -100


def as_plain_model(model: nn.Module) -> nn.Module:
    """Drop the GGUF "quantized" marks of an already dequantized float model.

    The embedded chat model is cached from a GGUF file and its config keeps a
    ``quantization_config``, so transformers attaches a GGUF quantizer on load although the
    weights are plain float32: trainers then refuse to train it and ``save_pretrained``
    writes a config that claims GGUF. Other quantizers are left alone.
    """
    config = getattr(model, "config", None)
    quant = getattr(config, "quantization_config", None)
    method = quant.get("quant_method") if isinstance(quant, dict) else getattr(
        quant, "quant_method", None)
    if str(getattr(method, "value", method)).lower() != "gguf":
        return model
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)  # transformers' own undo
    elif hasattr(config, "quantization_config"):
        del config.quantization_config
    return model


def load_lm(name: str, trust_remote_code: bool = False, allow_pickle: bool = False):
    """(model, tokenizer, source) of a causal LM ready for chat: plain float weights and a
    chat template (the model's own, ChatML when it has none)."""
    from ..data.encode.chat import ensure_chat_template
    from .loading import load_causal_lm

    model, tokenizer, source = load_causal_lm(name, trust_remote_code, allow_pickle)
    ensure_chat_template(tokenizer)
    return as_plain_model(model), tokenizer, source


def unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP / accelerate wrappers."""
    return getattr(model, "module", model)


def virtual_tokens(model: nn.Module) -> int:
    """How many positions peft prepends to the sequence (prompt / p-tuning), else 0."""
    model = unwrap(model)
    config = getattr(model, "active_peft_config", None)
    if config is None or not getattr(config, "is_prompt_learning", False):
        return 0
    kind = str(getattr(config.peft_type, "value", config.peft_type))
    return 0 if kind in ("PREFIX_TUNING", "CARTRIDGE") else int(config.num_virtual_tokens)


def supports_logits_to_keep(model: nn.Module) -> bool:
    """Whether the underlying transformers model can project selected positions only."""
    model = unwrap(model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def targets_and_mask(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep, targets): keep[b, t] is True where token t+1 is trained; targets in order."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    return keep, labels[:, 1:][labels[:, 1:] != IGNORE]


def selected_logits(model: nn.Module, batch: dict[str, torch.Tensor],
                    keep: torch.Tensor) -> torch.Tensor:
    """Logits (n_kept, vocab) at the ``keep`` positions, LM head applied only there."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    offset = virtual_tokens(model)
    if supports_logits_to_keep(model):
        mask = keep
        if offset:
            mask = torch.cat([keep.new_zeros(keep.shape[0], offset), keep], dim=1)
        return model(**inputs, logits_to_keep=mask, use_cache=False).logits
    logits = model(**inputs, use_cache=False).logits  # older or remote-code models
    return logits[:, offset:][keep]


def token_nll(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(summed negative log-likelihood, number of trained tokens) for one batch."""
    keep, targets = targets_and_mask(batch["labels"])
    if targets.numel() == 0:
        return torch.zeros((), requires_grad=True), 0  # backward() stays a no-op
    logits = selected_logits(model, batch, keep)
    return F.cross_entropy(logits.float(), targets, reduction="sum"), int(targets.numel())


def lm_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean NLL per trained token: the training objective of chat SFT and pretraining."""
    total, count = token_nll(model, batch)
    return total / max(1, count)


@torch.no_grad()
def mean_nll(model: nn.Module, items: list, pad_id: int) -> dict[str, float]:
    """Teacher-forced NLL per trained token over encoded ``items`` (one sequence per
    forward): validation during training and perplexity in evaluation."""
    from ..data.encode.chat_batches import lm_batches

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for item in items:
        batch = lm_batches([item], 1, pad_id, 0).collate([0])
        nll, n = token_nll(model, on_model_device(batch, model))
        total, count = total + float(nll), count + n
    model.train(was_training)
    nll = total / count if count else float("nan")
    return {"nll": nll, "perplexity": math.exp(nll) if count else float("nan"), "tokens": count}
