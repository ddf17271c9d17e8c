"""P-tuning: virtual tokens produced by a small trained prompt encoder (an MLP)."""

from torch import nn

from ..config import StrategyConfig
from .base import CAUSAL_LM, CLASSIFIER, Strategy, peft_task_type, wrap_with_peft


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    from peft import PromptEncoderConfig

    return wrap_with_peft(model, PromptEncoderConfig(task_type=peft_task_type(kind),
                                                     num_virtual_tokens=cfg.num_virtual_tokens,
                                                     encoder_hidden_size=128))


STRATEGY = Strategy("p-tuning", apply, lr={CLASSIFIER: 1e-2, CAUSAL_LM: 1e-2},
                    settings=frozenset({"num_virtual_tokens"}), prompt_learning=True)
