"""Fine-tuning strategies: a registry of small ``apply`` functions.

Adding a strategy = one module here defining ``STRATEGY``, one line in ``_MODULES``, one
config in ``configs/``. The training loop never changes: it trains whatever parameters
the strategy left with ``requires_grad``.
"""

from __future__ import annotations

import importlib

from torch import nn

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import CAUSAL_LM, CLASSIFIER, MODEL_KINDS, Strategy

_MODULES = {
    "full": "full",
    "freeze": "freeze",
    "lora": "lora",
    "dora": "dora",
    "ia3": "ia3",
    "prompt-tuning": "prompt_tuning",
    "p-tuning": "p_tuning",
    "prefix-tuning": "prefix_tuning",
}

# What ``recommend`` measures, in this order, after a task's default strategy when the
# default does not fit a time budget: LoRA first (on BANKING77 0.929 test accuracy against
# full fine-tuning's 0.931, benchmarks/RESULTS.md), then freeze, whose backward pass stops
# at the top layers it trains (the cheapest step of the three on an encoder).
BUDGET_FALLBACKS = ("lora", "freeze")


def get_strategy(name: str) -> Strategy:
    if name not in _MODULES:
        raise ConfigError(f"unknown strategy '{name}'; choose one of {', '.join(_MODULES)}")
    return importlib.import_module(f"{__name__}.{_MODULES[name]}").STRATEGY


def names() -> list[str]:
    return list(_MODULES)


def apply_strategy(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    """Return the model (of model kind ``kind``) prepared for training with ``cfg.name``
    (possibly a peft wrapper)."""
    strategy = get_strategy(cfg.name or "full")
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_KINDS)}")
    if kind not in strategy.model_kinds:
        raise ConfigError(f"strategy '{strategy.name}' does not support {kind} models")
    return strategy.apply(model, cfg, kind)


def check_settings(cfg: StrategyConfig) -> None:
    """Refuse (one line) a ``strategy.*`` setting the user set that the strategy ignores.

    Only values set explicitly *and* different from the default count: a saved
    ``config.yaml`` lists every setting, so a repeated run must not trip over its defaults.
    """
    strategy = get_strategy(cfg.name or "full")
    for key in sorted(cfg.model_fields_set - {"name"} - strategy.settings):
        if getattr(cfg, key) != StrategyConfig.model_fields[key].default:
            raise ConfigError(f"strategy.{key} does not apply to strategy '{strategy.name}'"
                              + (f" (it reads {', '.join(sorted(strategy.settings))})"
                                 if strategy.settings else ""))


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, each shared tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


__all__ = ["BUDGET_FALLBACKS", "CAUSAL_LM", "CLASSIFIER", "Strategy", "apply_strategy", "check_settings",
           "get_strategy", "names", "parameter_counts"]
