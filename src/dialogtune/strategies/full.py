"""Full fine-tuning: every parameter trains."""

from torch import nn

from ..config import StrategyConfig
from .base import CAUSAL_LM, CLASSIFIER, Strategy


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    for param in model.parameters():
        param.requires_grad = True
    return model


STRATEGY = Strategy("full", apply, lr={CLASSIFIER: 2e-4, CAUSAL_LM: 5e-5})
