"""Run configuration: YAML files, CLI values, --set overrides and per-task defaults."""

from __future__ import annotations

import pytest

from dialogtune.config import (RunConfig, load_config, parse_override, read_run_config,
                               save_config)
from dialogtune.errors import ConfigError
from dialogtune.tasks import names


def test_defaults_without_file():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.task == "intent" and cfg.model.name is None and cfg.train.lr is None


def test_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: chat\ntrain:\n  lr: 1e-4\n  epochs: 2\nstrategy:\n  name: dora\n"
                    "  target_modules: [q_proj, v_proj]\n")
    cfg = load_config(path)
    assert cfg.task == "chat" and cfg.strategy.name == "dora"
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.epochs == 2
    assert cfg.strategy.target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize("content", ["", "\n", "# only a comment\n"])
def test_empty_yaml_is_an_error(tmp_path, content):
    """An empty file (truncated, or the wrong one) is refused, not read as all defaults."""
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"^{path}: the config file is empty"):
        load_config(path)
    path.write_text("{}\n")  # all defaults, said explicitly
    assert load_config(path) == RunConfig()


@pytest.mark.parametrize("content, expected", [
    ("train: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("train:\n  learning_rate: 0.1\n", "train.learning_rate"),
    ("train:\n  batch_size: many\n", "train.batch_size"),
])
def test_bad_yaml_names_file_and_field(tmp_path, content, expected):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)) and expected in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_precedence_yaml_then_cli_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 5\n  batch_size: 8\nmodel:\n  name: from-yaml\n")
    cfg = load_config(path, ["train.epochs=7"], **{"train.epochs": 6, "model.name": "from-cli",
                                                    "data.train": None})
    assert cfg.train.epochs == 7  # --set wins over the CLI flag and the file
    assert cfg.model.name == "from-cli"  # the CLI flag wins over the file
    assert cfg.train.batch_size == 8  # untouched file values stay
    assert cfg.data.train is None  # unset CLI values do not override


@pytest.mark.parametrize("item, key, value", [
    ("train.lr=1e-4", "train.lr", 1e-4),
    ("lr=3E-5", "lr", 3e-5),
    ("train.batch_size=16", "train.batch_size", 16),
    ("group_by_length=false", "group_by_length", False),
    ("strategy.target_modules=[query, value]", "strategy.target_modules", ["query", "value"]),
    ("data.text_column=", "data.text_column", None),
    ("model.name=org/model=v2", "model.name", "org/model=v2"),
])
def test_parse_override(item, key, value):
    parsed_key, parsed = parse_override(item)
    assert parsed_key == key
    assert parsed == value and type(parsed) is type(value)


def test_parse_override_needs_equals():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("train.lr")


def test_set_dotted_and_unqualified_keys():
    cfg = load_config(None, ["lr=1e-4", "batch_size=4", "lora_r=4", "train.epochs=0.5",
                             "pooling=cls", "task=chat", "val_fraction=0.2"])
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == pytest.approx(1e-4)
    assert cfg.train.batch_size == 4 and cfg.strategy.lora_r == 4
    assert cfg.train.epochs == 0.5 and cfg.model.pooling == "cls"
    assert cfg.task == "chat" and cfg.data.val_fraction == 0.2


def test_set_ambiguous_key():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["name=lora"])
    assert "ambiguous" in str(info.value)
    assert "model.name" in str(info.value) and "strategy.name" in str(info.value)


@pytest.mark.parametrize("item", ["learning_rate=0.1", "train.learning_rate=0.1"])
def test_set_unknown_key(item):
    with pytest.raises(ConfigError) as info:
        load_config(None, [item])
    assert "learning_rate" in str(info.value)


@pytest.mark.parametrize("item, field", [
    ("train.batch_size=abc", "train.batch_size"),
    ("batch_size=2.5", "train.batch_size"),
    ("train.schedule=sawtooth", "train.schedule"),
    ("task=translate", "task"),
    ("model.pooling=max", "model.pooling"),
])
def test_set_invalid_value_names_field(item, field):
    with pytest.raises(ConfigError) as info:
        load_config(None, [item])
    assert f"{field}:" in str(info.value)


def test_set_below_a_scalar_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match="'lr' is not a section"):
        load_config(path, ["train.lr.x=1"])


@pytest.mark.parametrize("task", names())
def test_resolved_task_defaults(task):
    expected = {"intent": ("minilm", "full", 64), "chat": ("smollm2", "lora", 2048),
                "pretrain": ("smollm2", "lora", 256), "nlu": ("minilm", "full", 64),
                "preference": ("smollm2", "lora", 2048)}[task]
    raw = RunConfig(task=task)
    cfg = raw.resolved()
    assert (cfg.model.name, cfg.strategy.name, cfg.data.max_length) == expected
    assert raw.model.name is None and raw.strategy.name is None  # not mutated


def test_resolved_keeps_user_choices():
    cfg = load_config(None, ["task=chat", "model.name=my-model", "strategy.name=freeze",
                             "data.max_length=32"]).resolved()
    assert (cfg.model.name, cfg.strategy.name, cfg.data.max_length) == ("my-model", "freeze", 32)


def test_save_and_read_run_config_round_trip(tmp_path):
    cfg = load_config(None, ["lr=1e-4", "strategy.target_modules=[query]", "task=chat"]).resolved()
    save_config(cfg, tmp_path / "config.yaml")
    assert read_run_config(tmp_path) == cfg
    with pytest.raises(ConfigError, match="not a dialogtune run"):
        read_run_config(tmp_path / "elsewhere")


def test_intent_epochs_follow_the_data_unless_the_user_sets_them():
    default = load_config(None, None, task="intent").resolved().train
    assert (default.epochs, default.step_budget, default.min_epochs) == (4, 600, 2)
    chosen = load_config(None, ["train.epochs=3"], task="intent").resolved().train
    assert (chosen.epochs, chosen.step_budget) == (3, 0)
    assert load_config(None, None, task="chat").resolved().train.epochs == 1  # chat's own


def test_nlu_trains_every_default_epoch_on_large_data():
    """The intent task's step budget must not cut NLU's 4 epochs (it cut SNIPS to 2)."""
    from dialogtune.optim import total_steps

    nlu = load_config(None, None, task="nlu").resolved().train
    assert (nlu.epochs, nlu.step_budget) == (4, 0)
    assert total_steps(409, nlu) == 4 * 409  # SNIPS: 13,084 utterances, batch 32


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_val_fraction_outside_zero_to_one_is_refused(value):
    with pytest.raises(ConfigError, match="data.val_fraction"):
        load_config(None, [f"data.val_fraction={value}"])
