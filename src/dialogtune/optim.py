"""The optimizer side of the training loop: AdamW's parameter groups, the learning-rate
schedule, and the number of steps a run takes. Pure functions, shared by ``train.fit`` and
``advise`` (which estimates a run's length before training it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .config import TrainConfig


def lr_lambda(schedule: str, total: int, warmup: int) -> Callable[[int], float]:
    """Multiplier on the peak rate at ``step``: warm-up then the chosen decay."""
    def factor(step: int) -> float:
        if schedule == "constant":
            return min(1.0, (step + 1) / max(1, warmup))
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        # one-cycle: cosine annealing towards 1/1000 of the peak, as in torch's OneCycleLR
        return 1e-3 + (1 - 1e-3) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return factor


def parameter_groups(model: nn.Module, lr: float, head_lr: float | None,
                     weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay on biases/norms; the randomly initialised head gets ``head_lr``."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = head_lr is not None and "classifier" in name
        decay = param.ndim > 1 and "norm" not in name.lower()
        groups.setdefault((is_head, decay), []).append(param)
    return [{"params": params, "lr": head_lr if is_head else lr,
             "weight_decay": weight_decay if decay else 0.0}
            for (is_head, decay), params in sorted(groups.items())]


def total_steps(per_epoch: int, cfg: TrainConfig) -> int:
    """Optimizer steps of the whole run, per process: epochs, cut to ``step_budget`` (but
    never below ``min_epochs``), at least ``min_steps``, capped by ``max_steps``."""
    total = math.ceil(cfg.epochs * per_epoch)
    if cfg.step_budget and total > cfg.step_budget:
        total = max(cfg.step_budget, math.ceil(cfg.min_epochs * per_epoch))
    total = max(1, total, cfg.min_steps)
    return min(total, cfg.max_steps) if cfg.max_steps else total


def fused_supported(model: nn.Module) -> bool:
    return all(p.dtype in (torch.float32, torch.float16, torch.bfloat16)
               and p.device.type in ("cpu", "cuda") for p in model.parameters() if p.requires_grad)


def restore_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, step: int) -> None:
    """Put a freshly built LambdaLR at ``step`` without replaying the steps."""
    scheduler.last_epoch = step
    for group, base, fn in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                               scheduler.lr_lambdas):
        group["lr"] = base * fn(step)
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
