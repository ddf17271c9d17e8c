"""LoRA: low-rank updates on every linear layer (or ``strategy.target_modules``)."""

from torch import nn

from ..config import StrategyConfig
from .base import (CAUSAL_LM, CLASSIFIER, LORA_SETTINGS, Strategy, peft_task_type, target_modules,
                   wrap_with_peft)


def lora_config(model: nn.Module, cfg: StrategyConfig, kind: str, use_dora: bool = False):
    from peft import LoraConfig

    return LoraConfig(task_type=peft_task_type(kind), r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=target_modules(model, cfg),
                      use_dora=use_dora)


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    return wrap_with_peft(model, lora_config(model, cfg, kind))


STRATEGY = Strategy("lora", apply, lr={CLASSIFIER: 1e-3, CAUSAL_LM: 1e-3},
                    settings=LORA_SETTINGS, mergeable=True)
