"""DoRA: LoRA with the update split into magnitude and direction."""

from torch import nn

from ..config import StrategyConfig
from .base import CAUSAL_LM, CLASSIFIER, LORA_SETTINGS, Strategy, wrap_with_peft
from .lora import lora_config


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    return wrap_with_peft(model, lora_config(model, cfg, kind, use_dora=True))


STRATEGY = Strategy("dora", apply, lr={CLASSIFIER: 1e-3, CAUSAL_LM: 1e-3},
                    settings=LORA_SETTINGS, mergeable=True)
