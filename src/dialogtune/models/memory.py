"""Activation checkpointing: keep less of the forward pass for the backward one.

A layer's activations are recomputed during the backward pass instead of being kept from
the forward one (transformers' ``gradient_checkpointing_enable``, non-reentrant, so frozen
inputs under LoRA need no ``requires_grad`` trick). ``train.gradient_checkpointing`` turns
it on; it trades memory for one more forward pass through each layer.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError


def checkpoint_activations(model: nn.Module) -> None:
    """Turn on activation checkpointing for ``model`` (a transformers model, possibly
    under a peft wrapper); a model that cannot is a configuration error naming it."""
    enable = getattr(model, "gradient_checkpointing_enable", None)
    base = getattr(model, "get_base_model", lambda: model)()
    if enable is None or not getattr(base, "supports_gradient_checkpointing", False):
        raise ConfigError(f"train.gradient_checkpointing: {type(base).__name__} does not "
                          "support activation checkpointing")
    enable(gradient_checkpointing_kwargs={"use_reentrant": False})
