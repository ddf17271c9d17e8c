"""Partial fine-tuning: only the top ``freeze_top_k`` transformer layers (and the head) train.

Cheaper than full fine-tuning and far less prone to forgetting on tiny data sets.
"""

from torch import nn

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import CAUSAL_LM, CLASSIFIER, Strategy, freeze_all, unfreeze_head


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the longest ModuleList in the model."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ConfigError("strategy 'freeze': no transformer layer stack found in the model")
    return max(lists, key=len)


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    layers = transformer_layers(model)
    if not 0 < cfg.freeze_top_k <= len(layers):
        raise ConfigError(f"strategy.freeze_top_k must be between 1 and {len(layers)}")
    freeze_all(model)
    for layer in layers[len(layers) - cfg.freeze_top_k:]:
        for param in layer.parameters():
            param.requires_grad = True
    unfreeze_head(model)
    if kind == CAUSAL_LM:  # its final norm sits above the blocks
        for name, param in model.named_parameters():
            if name.endswith(("norm.weight", "norm.bias")) and ".layers." not in name:
                param.requires_grad = True
    return model


STRATEGY = Strategy("freeze", apply, lr={CLASSIFIER: 5e-4, CAUSAL_LM: 1e-4},
                    settings=frozenset({"freeze_top_k"}))
