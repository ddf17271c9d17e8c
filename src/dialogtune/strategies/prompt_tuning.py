"""Prompt tuning: learned virtual tokens prepended to the input; the model stays frozen."""

from torch import nn

from ..config import StrategyConfig
from .base import CAUSAL_LM, CLASSIFIER, Strategy, peft_task_type, wrap_with_peft


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    from peft import PromptTuningConfig, PromptTuningInit

    kwargs = {}
    if cfg.prompt_init_text:
        kwargs = {"prompt_tuning_init": PromptTuningInit.TEXT,
                  "prompt_tuning_init_text": cfg.prompt_init_text,
                  "tokenizer_name_or_path": getattr(model, "_dialogtune_source", None)}
    return wrap_with_peft(model, PromptTuningConfig(task_type=peft_task_type(kind),
                                                    num_virtual_tokens=cfg.num_virtual_tokens,
                                                    **kwargs))


STRATEGY = Strategy("prompt-tuning", apply, lr={CLASSIFIER: 3e-2, CAUSAL_LM: 3e-2},
                    settings=frozenset({"num_virtual_tokens", "prompt_init_text"}),
                    prompt_learning=True)
