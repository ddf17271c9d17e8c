"""Small typed run configurations, loadable from YAML with ``--set key=value`` overrides.

A run directory stores the resolved config, so every run can be repeated from its folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# the share of the training data held out for validation unless data.val_fraction says
DEFAULT_VAL_FRACTION = 0.1


class DataConfig(_Section):
    train: str | None = None
    eval: str | None = None
    format: str = "auto"
    # chat: a JSON file of tools for the dialogues without their own (data/formats/tools_file.py)
    tools: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    # the share held out for validation; 0: train on every example. None: 0.1, except that
    # intent runs on fewer than 8 utterances per intent train on all (tasks/intent.py)
    val_fraction: float | None = Field(None, ge=0.0, lt=1.0)
    # the validation split's seed; None: train.seed. ``compare`` and ``curve`` fix it so
    # every cell, whatever its training seed, holds out the same validation examples.
    split_seed: int | None = None
    max_length: int | None = None
    min_examples_warning: int = 5
    # NLU: "previous" reads a dialogue user turn with the assistant turn before it
    context: Literal["previous"] | None = None
    # NLU: slot labels on the first piece of each word ("first") or on every piece ("all")
    slot_labels: Literal["first", "all"] = "first"
    # train although the model cannot represent much of the text (data/quality/vocabulary.py)
    force: bool = False


class ModelConfig(_Section):
    name: str | None = None
    pooling: Literal["mean", "cls"] = "mean"
    dropout: float = 0.1
    # intent: a linear head or a cosine head (models/heads.py), started at random or at
    # each intent's mean embedding of the training data
    head: Literal["linear", "cosine"] = "linear"
    head_init: Literal["random", "prototypes"] = "random"
    # NLU: a per-token softmax slot head decoded by BIO-constrained Viterbi, or a trained
    # CRF over its emissions (models/slot_crf.py). SNIPS, 3 seeds each (RESULTS.md): CRF
    # slot F1 0.959 / sentence 0.901 vs 0.954 / 0.895 for 17 % more training time; the
    # gain is half the seed spread, so softmax stays the default
    slot_decoder: Literal["softmax", "crf"] = "softmax"
    trust_remote_code: bool = False
    allow_pickle: bool = False  # load .bin/.pt (pickle) weights; they can run code on load
    # intent / NLU: give Chinese and Japanese characters the vocabulary lacks tokens of their
    # own (``add_tokens``, filled in from the training data) instead of the unknown token
    extend_vocabulary: bool = True
    add_tokens: list[str] = []


class StrategyConfig(_Section):
    name: str | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] | str | None = None
    num_virtual_tokens: int = 20
    prompt_init_text: str | None = None
    freeze_top_k: int = 2


class TrainConfig(_Section):
    epochs: float = 3
    batch_size: int = 32
    lr: float | None = None  # None: the strategy's recommended rate
    # intent head: this × full fine-tuning's encoder rate 2e-4 (tasks/intent.py)
    head_lr_multiplier: float = 20.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Literal["one-cycle", "linear", "cosine", "constant"] = "one-cycle"
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    # intent: weight of a supervised contrastive term on the sentence embeddings
    contrastive_weight: float = 0.0
    # intent: batches made of runs of this many utterances of one intent (0: random batches)
    examples_per_label: int = 0
    # intent: how the out-of-scope threshold is calibrated on the validation split.
    # reject-in-scope: flag ``oos_share`` (default 5 %) of the in-scope validation turns;
    # keep-correct: keep ``oos_share`` (default 95 %) of the correct predictions above it.
    # On BANKING77 with 19 intents unknown (2 runs), keep-correct rejected 8.2 % and 7.7 %
    # of in-scope test turns, reject-in-scope 6.6 % and 5.3 % (benchmarks/RESULTS.md).
    oos_rule: Literal["reject-in-scope", "keep-correct"] = "reject-in-scope"
    oos_share: float | None = Field(None, gt=0.0, lt=1.0)
    # preference: the objective (models/preference.py) and its β (λ for ORPO); None: the
    # method's default
    method: Literal["dpo", "orpo", "kto", "simpo"] = "dpo"
    beta: float | None = Field(None, gt=0.0)
    # preference: weight of the chosen replies' NLL per token added to the loss (RPO);
    # None: the method's default (models/preference.py)
    sft_weight: float | None = Field(None, ge=0.0)
    seed: int = 42
    patience: int = 2
    save_every_steps: int = 200
    num_threads: int | None = None
    group_by_length: bool = True
    max_steps: int | None = None
    # Small data sets need more passes: training runs at least this many steps.
    min_steps: int = 0
    # When set, default epochs that would take more steps than this stop at it, though
    # never before ``min_epochs``: long epochs need fewer passes. A run whose epochs the
    # user sets is never cut (Task.resolve drops the budget then).
    step_budget: int = 0
    min_epochs: float = 0
    # auto: bf16 autocast where this machine's bf16 matmul is at least twice float32's
    # (measured at start, see precision.py), float32 elsewhere.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Recompute each layer's activations in the backward pass instead of keeping them:
    # less memory for long sequences, more compute. Measured on SmolLM2 preference pairs
    # (benchmarks/RESULTS.md, DPO then DPO + SFT term with checkpointing, one run each):
    # peak RSS 9,982 → 5,138 MiB, tokens/s 796 → 564.
    gradient_checkpointing: bool = False


class RunConfig(_Section):
    task: str = "intent"  # one of tasks.names()
    output: str | None = None
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    strategy: StrategyConfig = StrategyConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        """A registered task; the registry is read lazily (it imports no task module)."""
        from .tasks import names

        if value not in names():
            quoted = [f"'{name}'" for name in names()]
            expected = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1
                                   else quoted)
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": expected})
        return value

    def resolved(self) -> "RunConfig":
        """A copy with the task's defaults in the fields the user left unset (the task
        module is imported: torch)."""
        from .tasks import get_task

        return get_task(self.task).resolve(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


SECTIONS = ("data", "model", "strategy", "train")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                **cli_values: Any) -> RunConfig:
    """Build a RunConfig from a YAML file, then CLI flags, then ``--set`` overrides (last wins)."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is None:  # an empty (or all-comment) file: likely truncated or the wrong one
            raise ConfigError(f"{path}: the config file is empty; write at least one setting "
                              "(or '{}' for all defaults)")
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        raw = loaded
    for dotted, value in cli_values.items():
        if value is not None:
            _set_dotted(raw, dotted, value)
    for item in overrides or []:
        key, value = parse_override(item)
        _set_dotted(raw, _qualify(key), value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: {field}: {first['msg']}") from None


def parse_override(item: str) -> tuple[str, Any]:
    """``train.lr=1e-4`` → ("train.lr", 0.0001); values are parsed as YAML scalars."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        value = text
    if isinstance(value, str) and _looks_numeric(text):
        value = float(text)  # PyYAML reads "1e-4" as a string
    return key.strip(), value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _qualify(key: str) -> str:
    """Allow ``lr=...`` for ``train.lr=...`` when the field name is unambiguous."""
    if "." in key or key in RunConfig.model_fields:
        return key
    owners = [s for s in SECTIONS
              if key in RunConfig.model_fields[s].annotation.model_fields]  # type: ignore[union-attr]
    if len(owners) == 1:
        return f"{owners[0]}.{key}"
    if not owners:
        raise ConfigError(f"--set {key}: unknown setting")
    raise ConfigError(f"--set {key}: ambiguous, write one of " +
                      ", ".join(f"{s}.{key}" for s in owners))


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def save_config(cfg: RunConfig, path: Path) -> None:
    """Write the resolved config atomically and durably (a run is repeated from it)."""
    from .atomic import write_text_atomic

    write_text_atomic(path, cfg.to_yaml())


def read_run_config(run_dir: Path) -> RunConfig:
    """The resolved config a run was trained with."""
    from .runs.layout import RunDir

    path = RunDir(Path(run_dir)).config
    if not path.exists():
        raise ConfigError(f"{run_dir}: not a dialogtune run (no config.yaml)")
    return load_config(path)
