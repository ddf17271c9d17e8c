"""DoRA: LoRA with the update split into magnitude and direction."""

from torch import nn

from ..config import StrategyConfig
from .base import Strategy, wrap_with_peft
from .lora import lora_config


def apply(model: nn.Module, cfg: StrategyConfig, task: str) -> nn.Module:
    return wrap_with_peft(model, lora_config(model, cfg, task, use_dora=True))


STRATEGY = Strategy("dora", apply, lr={"intent": 1e-3, "chat": 1e-3}, uses_peft=True)
