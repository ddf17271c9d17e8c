"""What a strategy is, and helpers several strategies share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..config import StrategyConfig

ALL_TASKS = frozenset({"intent", "chat", "pretrain"})
# Modules never adapted: the intent head is trained in full, pooler/lm_head are outputs.
OUTPUT_MODULES = ("classifier", "pooler", "lm_head")


@dataclass(frozen=True)
class Strategy:
    """A named way to choose (or add) the trainable parameters of a model.

    ``lr`` holds the learning rate measured to work per task; ``train.lr`` overrides it.
    """

    name: str
    apply: Callable[[nn.Module, StrategyConfig, str], nn.Module]
    lr: dict[str, float]
    tasks: frozenset[str] = field(default=ALL_TASKS)
    uses_peft: bool = False

    def learning_rate(self, task: str) -> float:
        return self.lr.get(task, self.lr.get("chat", next(iter(self.lr.values()))))


def linear_module_names(model: nn.Module) -> list[str]:
    """Leaf names of every nn.Linear outside the output layers (peft matches by suffix)."""
    names = set()
    for full_name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not any(
                part in OUTPUT_MODULES for part in full_name.split(".")):
            names.add(full_name.rsplit(".", 1)[-1])
    return sorted(names)


def freeze_all(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad = False


def unfreeze_head(model: nn.Module) -> None:
    """The intent head is always trained: it starts random."""
    head = getattr(model, "classifier", None)
    if head is not None:
        for param in head.parameters():
            param.requires_grad = True


def peft_task_type(task: str) -> str:
    return "SEQ_CLS" if task == "intent" else "CAUSAL_LM"


def wrap_with_peft(model: nn.Module, peft_config) -> nn.Module:
    """Apply a peft config; the intent head is kept fully trainable via modules_to_save."""
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def target_modules(model: nn.Module, cfg: StrategyConfig) -> list[str] | str:
    if cfg.target_modules:
        return cfg.target_modules
    return linear_module_names(model)
