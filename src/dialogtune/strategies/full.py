"""Full fine-tuning: every parameter trains."""

from torch import nn

from ..config import StrategyConfig
from .base import Strategy


def apply(model: nn.Module, cfg: StrategyConfig, task: str) -> nn.Module:
    for param in model.parameters():
        param.requires_grad = True
    return model


STRATEGY = Strategy("full", apply, lr={"intent": 2e-4, "chat": 5e-5})
