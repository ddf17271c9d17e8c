"""A trained chat run loaded for use, and the model a causal-LM run starts from (a model, or
an SFT run merged into its base): shared by chat inference, evaluation, export and
preference training."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..checkpoint import load_trainable
from ..config import RunConfig, read_run_config
from ..errors import DialogtuneError
from ..models.lm import load_lm
from ..models.loading import LoadPolicy
from ..runs.layout import RunDir
from ..strategies import CAUSAL_LM, apply_strategy, get_strategy
from ..tasks import get_task


def load_chat_run(run_dir: str | Path, merge: bool = True, policy: LoadPolicy | None = None
                  ) -> tuple[nn.Module, object, RunConfig, str]:
    """(model, tokenizer, config, base source) of a trained chat/pretrain run.

    The run stores only what its strategy trained; the base model is rebuilt from
    ``model.name``, the strategy re-applied and the weights loaded on top. With ``merge``,
    LoRA/DoRA/IA3 adapters are folded into the base weights (plain, faster model).
    ``policy`` (the command line's; default: safe) grants remote code or pickle weights,
    never the run's own config.
    """
    run = RunDir(Path(run_dir)).require_trained()
    cfg = read_run_config(run.path)
    if get_task(cfg.task).model_kind != CAUSAL_LM:
        raise DialogtuneError(f"{run.path} is an {cfg.task} run, not a chat model; use "
                              "'dialogtune predict'")
    policy = (policy or LoadPolicy()).for_run(cfg, run.path)
    model, tokenizer, source = load_start(cfg.model.name, policy)
    model = apply_strategy(model, cfg.strategy, CAUSAL_LM)
    load_trainable(model, run.weights)
    if merge and hasattr(model, "merge_and_unload") and get_strategy(cfg.strategy.name).mergeable:
        model = model.merge_and_unload()
    return model, tokenizer, cfg, source


def load_start(name: str, policy: LoadPolicy) -> tuple[nn.Module, object, str]:
    """(model, tokenizer, source) a causal-LM run starts from: a model (alias, folder, hub
    id) or a trained chat run, its weights merged into the base (preference tuning starts
    from an SFT run; its reference is then the SFT model)."""
    if not RunDir(Path(name)).is_run():
        return load_lm(name, policy.trust_remote_code, policy.allow_pickle)
    model, tokenizer, _, source = load_chat_run(name, merge=True, policy=policy)
    if hasattr(model, "peft_config"):
        raise DialogtuneError(f"{name}: its strategy cannot be merged into the model; start "
                              "from a run trained with lora, dora, ia3 or full")
    return model, tokenizer, source
