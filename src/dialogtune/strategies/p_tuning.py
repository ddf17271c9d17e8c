"""P-tuning: virtual tokens produced by a small trained prompt encoder (an MLP)."""

from torch import nn

from ..config import StrategyConfig
from .base import Strategy, peft_task_type, wrap_with_peft


def apply(model: nn.Module, cfg: StrategyConfig, task: str) -> nn.Module:
    from peft import PromptEncoderConfig

    return wrap_with_peft(model, PromptEncoderConfig(task_type=peft_task_type(task),
                                                     num_virtual_tokens=cfg.num_virtual_tokens,
                                                     encoder_hidden_size=128))


STRATEGY = Strategy("p-tuning", apply, lr={"intent": 1e-2, "chat": 1e-2},
                    tasks=frozenset({"intent", "chat", "pretrain"}), uses_peft=True)
