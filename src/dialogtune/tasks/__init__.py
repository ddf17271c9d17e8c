"""Tasks: a registry of what dialogtune trains (intent classification, chat, pre-training).

Adding a task = one module here defining ``TASK`` (a :class:`~.base.Task`) and one line in
``_MODULES``. Components (data, models, strategies, the training loop, evaluation) never
import this package: a task passes them what they need (the model kind, its data).

Light on purpose: ``names()`` imports no task module, so config validation and
``dialogtune --help`` stay free of torch; ``get_task`` imports the one module asked for.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import Task

_MODULES = {
    "intent": "intent",
    "chat": "chat",
    "pretrain": "pretrain",
    "nlu": "nlu",
    "preference": "preference",
}


def get_task(name: str) -> Task:
    if name not in _MODULES:
        raise ConfigError(f"unknown task '{name}'; choose one of {', '.join(_MODULES)}")
    return importlib.import_module(f"{__name__}.{_MODULES[name]}").TASK


def names() -> list[str]:
    return list(_MODULES)


__all__ = ["Task", "get_task", "names"]
