"""LoRA: low-rank updates on every linear layer (or ``strategy.target_modules``)."""

from torch import nn

from ..config import StrategyConfig
from .base import Strategy, peft_task_type, target_modules, wrap_with_peft


def lora_config(model: nn.Module, cfg: StrategyConfig, task: str, use_dora: bool = False):
    from peft import LoraConfig

    return LoraConfig(task_type=peft_task_type(task), r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=target_modules(model, cfg),
                      use_dora=use_dora)


def apply(model: nn.Module, cfg: StrategyConfig, task: str) -> nn.Module:
    return wrap_with_peft(model, lora_config(model, cfg, task))


STRATEGY = Strategy("lora", apply, lr={"intent": 1e-3, "chat": 1e-3}, uses_peft=True)
