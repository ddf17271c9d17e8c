"""Prefix tuning: learned key/value vectors prepended in every attention layer.

peft's prefix tuning goes through the past-key-values cache, which encoders such as BERT
do not support; for intent models this module adds the same per-layer key/value prompts
(the P-tuning v2 idea) through a registered attention function instead. Causal LMs use peft.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import (CAUSAL_LM, CLASSIFIER, Strategy, freeze_all, peft_task_type, unfreeze_head,
                   wrap_with_peft)

ATTENTION_NAME = "dialogtune_prefix"


class KeyValuePrefix(nn.Module):
    """The learned keys and values one attention layer sees in front of the real tokens."""

    def __init__(self, heads: int, tokens: int, head_dim: int):
        super().__init__()
        self.keys = nn.Parameter(torch.randn(heads, tokens, head_dim) * 0.5)
        self.values = nn.Parameter(torch.randn(heads, tokens, head_dim) * 0.02)


def _prefixed_attention(module, query, key, value, attention_mask, **kwargs):
    """SDPA attention with the module's prefix concatenated to its keys and values."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    prefix = getattr(module, "kv_prefix", None)
    if prefix is not None:
        batch = query.shape[0]
        key = torch.cat([prefix.keys.unsqueeze(0).expand(batch, -1, -1, -1), key], dim=2)
        value = torch.cat([prefix.values.unsqueeze(0).expand(batch, -1, -1, -1), value], dim=2)
        if attention_mask is not None:  # every query may attend to every prefix slot
            shape = (*attention_mask.shape[:-1], prefix.keys.shape[1])
            visible = torch.ones(shape, dtype=torch.bool, device=attention_mask.device)
            if attention_mask.dtype != torch.bool:
                visible = torch.zeros(shape, dtype=attention_mask.dtype,
                                      device=attention_mask.device)
            attention_mask = torch.cat([visible, attention_mask], dim=-1)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, _prefixed_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def add_encoder_prefixes(model: nn.Module, tokens: int) -> int:
    """Attach a KeyValuePrefix to every self-attention with ``key``/``value`` projections."""
    attentions = [m for m in model.modules()
                  if isinstance(getattr(m, "key", None), nn.Linear)
                  and isinstance(getattr(m, "value", None), nn.Linear)
                  and hasattr(m, "attention_head_size")]
    if not attentions:
        raise ConfigError("strategy 'prefix-tuning': no BERT-style self-attention found; "
                          "use prompt-tuning or lora for this encoder")
    for attention in attentions:
        attention.kv_prefix = KeyValuePrefix(attention.num_attention_heads, tokens,
                                             attention.attention_head_size)
    _register_attention()
    model.config._attn_implementation = ATTENTION_NAME
    return len(attentions)


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    if kind == CAUSAL_LM:
        from peft import PrefixTuningConfig

        return wrap_with_peft(model, PrefixTuningConfig(task_type=peft_task_type(kind),
                                                        num_virtual_tokens=cfg.num_virtual_tokens))
    freeze_all(model)
    add_encoder_prefixes(model, cfg.num_virtual_tokens)
    unfreeze_head(model)
    return model


STRATEGY = Strategy("prefix-tuning", apply, lr={CLASSIFIER: 1e-2, CAUSAL_LM: 1e-2},
                    settings=frozenset({"num_virtual_tokens"}), prompt_learning=True)
