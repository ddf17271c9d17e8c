"""IA3: learned rescaling of keys, values and feed-forward activations (fewest parameters)."""

from torch import nn

from ..config import StrategyConfig
from ..errors import ConfigError
from .base import CAUSAL_LM, CLASSIFIER, Strategy, peft_task_type, wrap_with_peft


def apply(model: nn.Module, cfg: StrategyConfig, kind: str) -> nn.Module:
    from peft import IA3Config
    from peft.utils import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FF,
                            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS)

    model_type = model.config.model_type
    targets = cfg.target_modules or TARGETS.get(model_type)
    if targets is None:
        raise ConfigError(f"strategy 'ia3': no default modules for model type '{model_type}'; "
                          "set strategy.target_modules")
    feedforward = [m for m in FF.get(model_type, []) if m in targets]
    return wrap_with_peft(model, IA3Config(task_type=peft_task_type(kind),
                                           target_modules=targets,
                                           feedforward_modules=feedforward))


STRATEGY = Strategy("ia3", apply, lr={CLASSIFIER: 1e-2, CAUSAL_LM: 5e-3},
                    settings=frozenset({"target_modules"}), mergeable=True)
