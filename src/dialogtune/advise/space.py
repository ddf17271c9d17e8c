"""What ``tune`` searches: the settings that matter, around the values measured to work.

The learning rate is searched as a factor on the strategy's own rate for the task's model
kind (the rate ``strategies/`` records as measured), so one range serves every strategy;
epochs and batch size around the task's defaults; and each ``strategy.*`` setting the chosen
strategy reads (its ``settings``), from the table below, keyed by setting, never by strategy.
"""

from __future__ import annotations

from typing import Any

from ..config import RunConfig

# Log-uniform factor on the strategy's rate: a quarter to four times it, a 16-fold range
# centred (on a log scale) on the rate the strategy records as measured for the model kind.
LR_FACTOR = (0.25, 4.0)
# strategy setting → how to draw it; settings without an entry (target modules, init text)
# keep their value
SETTING_SPACE = {
    "lora_r": ("categorical", [4, 8, 16, 32]),
    "lora_alpha": ("categorical", [8, 16, 32, 64]),
    "lora_dropout": ("float", (0.0, 0.2)),
    "freeze_top_k": ("int", (1, 4)),
    "num_virtual_tokens": ("categorical", [5, 10, 20, 40]),
}


def suggest(trial, base: RunConfig, model_kind: str, strategies: list[str]) -> dict[str, Any]:
    """Draw one trial's settings: dotted config keys → values (``train.lr`` etc.)."""
    from ..strategies import get_strategy

    name = (trial.suggest_categorical("strategy", strategies) if len(strategies) > 1
            else strategies[0])
    strategy = get_strategy(name)
    defaults = base.model_copy(update={"strategy": base.strategy.model_copy(
        update={"name": name})}).resolved().train
    factor = trial.suggest_float("lr_factor", *LR_FACTOR, log=True)
    settings = {"strategy.name": name,
                "train.lr": factor * strategy.learning_rate(model_kind),
                "train.epochs": trial.suggest_int("epochs", 1, max(2, 2 * int(defaults.epochs))),
                "train.batch_size": trial.suggest_categorical(
                    "batch_size", batch_sizes(defaults.batch_size))}
    for setting in sorted(strategy.settings & set(SETTING_SPACE)):
        kind, values = SETTING_SPACE[setting]
        if kind == "categorical":
            settings[f"strategy.{setting}"] = trial.suggest_categorical(setting, values)
        elif kind == "int":
            settings[f"strategy.{setting}"] = trial.suggest_int(setting, *values)
        else:
            settings[f"strategy.{setting}"] = trial.suggest_float(setting, *values)
    return settings


def batch_sizes(default: int) -> list[int]:
    """Half, the same and twice the task's default batch size."""
    return sorted({max(1, default // 2), default, 2 * default})


def apply(base: RunConfig, settings: dict[str, Any], output: str) -> RunConfig:
    """``base`` with one trial's settings, writing into ``output``."""
    raw = base.model_dump(exclude_unset=True)
    raw["output"] = output
    for dotted, value in settings.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    return RunConfig.model_validate(raw)
