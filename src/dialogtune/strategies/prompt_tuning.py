"""Prompt tuning: learned virtual tokens prepended to the input; the model stays frozen."""

from torch import nn

from ..config import StrategyConfig
from .base import Strategy, peft_task_type, wrap_with_peft


def apply(model: nn.Module, cfg: StrategyConfig, task: str) -> nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit

    kwargs = {}
    if cfg.prompt_init_text:
        kwargs = {"prompt_tuning_init": PromptTuningInit.TEXT,
                  "prompt_tuning_init_text": cfg.prompt_init_text,
                  "tokenizer_name_or_path": getattr(model, "_dialogtune_source", None)}
    return wrap_with_peft(model, PromptTuningConfig(task_type=peft_task_type(task),
                                                    num_virtual_tokens=cfg.num_virtual_tokens,
                                                    **kwargs))


STRATEGY = Strategy("prompt-tuning", apply, lr={"intent": 3e-2, "chat": 3e-2}, uses_peft=True)
