"""``train.gradient_checkpointing``: the same training, less kept for the backward pass.

A chat run and a preference run (LoRA, the tiny Llama) with and without it end with the
same weights (recomputing a layer gives the same activations when nothing is random), the
checkpointing is really on during training, and a model that cannot do it is refused by
name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from helpers import write_jsonl
from dialogtune.config import load_config
from dialogtune.errors import ConfigError
from dialogtune.models.memory import checkpoint_activations
from dialogtune.pipeline import train_run
from dialogtune.runs.layout import RunDir

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ("train.num_threads=1", "train.precision=fp32", "train.max_steps=3",
        "train.save_every_steps=0")
PAIRS = [{"messages": [{"role": "user", "content": "What is my balance?"}],
          "chosen": {"role": "assistant", "content": "Your balance is 120 dollars."},
          "rejected": {"role": "assistant", "content": "Your balance is 70 dollars."}}] * 4


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(RunDir(run).weights)


def trained(task: str, data: Path, folder: str, run: Path, *extra: str) -> dict:
    train_run(load_config(None, [*FAST, *extra], task=task, output=str(run),
                          **{"data.train": str(data), "model.name": folder}))
    return weights(run)


@pytest.mark.parametrize("task", ["chat", "preference"])
def test_checkpointed_training_ends_with_the_same_weights(task, folder, data, tmp_path,
                                                          monkeypatch):
    source = data if task == "chat" else write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    plain = trained(task, source, folder, tmp_path / "plain")
    seen = []  # whether checkpointing is on at each training forward pass
    from transformers import LlamaForCausalLM

    forward = LlamaForCausalLM.forward

    def watching(self, *args, **kwargs):
        if self.training:
            seen.append(self.model.gradient_checkpointing)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", watching)
    checkpointed = trained(task, source, folder, tmp_path / "gc",
                           "train.gradient_checkpointing=true")
    assert seen and all(seen)
    assert plain.keys() == checkpointed.keys()
    for name, tensor in plain.items():
        torch.testing.assert_close(checkpointed[name], tensor, rtol=1e-4, atol=1e-5)


def test_a_model_without_checkpointing_is_refused():
    with pytest.raises(ConfigError, match="Linear does not support activation checkpointing"):
        checkpoint_activations(nn.Linear(2, 2))
