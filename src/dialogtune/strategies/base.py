"""What a strategy is, and helpers several strategies share.

Strategies adapt a *kind* of model, never a task: ``classifier`` (an encoder with an intent
head) or ``causal_lm`` (a decoder with an LM head). Tasks say which kind they train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..config import StrategyConfig

CLASSIFIER, CAUSAL_LM = "classifier", "causal_lm"
# The kinds of model a strategy can adapt, with peft's name for each.
PEFT_TASK_TYPES = {CLASSIFIER: "SEQ_CLS", CAUSAL_LM: "CAUSAL_LM"}
MODEL_KINDS = frozenset(PEFT_TASK_TYPES)
# Modules never adapted: the intent head is trained in full, pooler/lm_head are outputs.
OUTPUT_MODULES = ("classifier", "pooler", "lm_head")
LORA_SETTINGS = frozenset({"lora_r", "lora_alpha", "lora_dropout", "target_modules"})


@dataclass(frozen=True)
class Strategy:
    """A named way to choose (or add) the trainable parameters of a model.

    - ``apply(model, cfg, kind)``: prepare ``model`` (of model kind ``kind``) for training.
    - ``lr``: the learning rate measured to work, per model kind; ``train.lr`` overrides it.
    - ``settings``: the ``strategy.*`` settings it reads (others set explicitly are refused).
    - ``mergeable``: its trained weights fold exactly into the base weights (a plain model).
    - ``prompt_learning``: it adds virtual tokens in front of the input, so it cannot be
      merged and does not support packed sequences (peft drops their position ids).
    """

    name: str
    apply: Callable[[nn.Module, StrategyConfig, str], nn.Module]
    lr: dict[str, float]
    settings: frozenset[str] = frozenset()
    mergeable: bool = False
    prompt_learning: bool = False
    model_kinds: frozenset[str] = field(default=MODEL_KINDS)

    def learning_rate(self, kind: str) -> float:
        """The recommended rate for a model of ``kind`` (``classifier`` / ``causal_lm``)."""
        return self.lr[kind]

    @property
    def peft_adapter(self) -> bool:
        """Causal LMs trained with it carry a peft adapter (exportable as adapter files)."""
        return self.mergeable or self.prompt_learning


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


def peft_task_type(kind: str) -> str:
    """peft's task type for a model of ``kind``."""
    return PEFT_TASK_TYPES[kind]


def wrap_with_peft(model: nn.Module, peft_config) -> nn.Module:
    """Apply a peft config; the intent head is kept fully trainable via modules_to_save."""
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def target_modules(model: nn.Module, cfg: StrategyConfig) -> list[str] | str:
    if cfg.target_modules:
        return cfg.target_modules
    return linear_module_names(model)
