"""What a task is: its model kind, its defaults and the functions that train, evaluate,
load and read it. Each ``tasks/<name>.py`` builds one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import RunConfig

if TYPE_CHECKING:  # train imports torch; the registry must not (config validation)
    from ..train import Objective


@dataclass(frozen=True)
class Task:
    """One kind of run; everything else in dialogtune is shared between tasks.

    - ``model_kind``: what it trains, ``classifier`` or ``causal_lm``; strategies adapt
      models and choose their learning rate by kind, never by task name.
    - ``defaults``: config section → setting → value, filled into the settings the user
      left unset. ``strategy`` settings are filled only where the chosen strategy reads
      them (a LoRA rank for lora or dora, nothing for full).
    - ``train(cfg, resume=False, callbacks=())`` → the run summary (``run.json``).
    - ``evaluate(run, data, output, base=, oos_threshold=, policy=, tools=, backend=)`` → the
      metrics (``tools``: a tools file, for chat runs; ``backend``: ``torch``, or ``onnx``
      for classifier runs with an ONNX export; a task may take ``chat_data=`` too: held-out
      dialogues scored beside its own data, as preference runs do).
    - ``load_predictor(run_dir, policy)`` → a ready predictor of a trained run.
    - ``read_data(cfg, path)`` → the records of one data file, as training reads them.
    - ``objective``: the validation metric that picks the best epoch (and ``tune``'s trial).
    """

    name: str
    model_kind: str
    defaults: Mapping[str, Mapping[str, Any]]
    train: Callable[..., dict]
    evaluate: Callable[..., dict]
    load_predictor: Callable[..., Any]
    read_data: Callable[[RunConfig, str], list]
    objective: Objective

    def resolve(self, cfg: RunConfig) -> RunConfig:
        """A copy of ``cfg`` with this task's defaults in the settings left unset (or None)."""
        cfg = cfg.model_copy(deep=True)
        user_set = set(cfg.train.model_fields_set)
        for section, values in self.defaults.items():
            target = getattr(cfg, section)
            # the strategy's name first: which other strategy settings apply depends on it
            for key, value in sorted(values.items(), key=lambda item: item[0] != "name"):
                if section == "strategy" and key != "name" and key not in _reads(target.name):
                    continue
                if key not in target.model_fields_set or getattr(target, key) is None:
                    setattr(target, key, value)
        if "epochs" in user_set and "step_budget" not in user_set:
            cfg.train.step_budget = 0  # the budget shortens default epochs, never the user's
        return cfg


def _reads(strategy: str) -> frozenset[str]:
    """The ``strategy.*`` settings a strategy reads (imports the strategies: torch)."""
    from ..strategies import get_strategy

    return get_strategy(strategy).settings
