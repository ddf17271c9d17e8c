"""Where a model's weights live, and inputs moved there.

Training moves the model to the accelerator (``accelerate.prepare``), and the code that
feeds it outside the training step (validation, the out-of-scope calibration, evaluation,
generation) builds its tensors on the CPU: each such place moves them with these helpers,
so a CUDA run never meets a CPU tensor (``tests/train/test_devices.py`` checks every path).
"""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def on_model_device(batch: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``batch`` with every tensor on ``model``'s device (no copy where it already is)."""
    device = model_device(model)
    return {key: value.to(device) for key, value in batch.items()}
