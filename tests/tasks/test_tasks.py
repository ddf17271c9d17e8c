"""The task registry, the dependency rule around it, and the capabilities strategies declare
instead of being named in tuples."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dialogtune.config import (DataConfig, ModelConfig, RunConfig, StrategyConfig,
                               TrainConfig, load_config)
from dialogtune.errors import ConfigError
from dialogtune.strategies import (CAUSAL_LM, CLASSIFIER, check_settings, get_strategy,
                                   names as strategy_names)
from dialogtune.strategies.base import MODEL_KINDS
from dialogtune.tasks import get_task, names
from helpers import SRC

# Components: what tasks are built from. They never import a task (or the task lookup).
COMPONENTS = ("data", "models", "strategies", "train", "evaluate", "checkpoint", "atomic",
              "runs", "precision", "utilisation", "optim")
FORBIDDEN = ("dialogtune.tasks", "dialogtune.pipeline")
# Users of trained runs (inference/, export/) may ask the task registry what a run is
# (``dialogtune.tasks.get_task(cfg.task).model_kind``), never import a task module itself.
RUN_USERS = ("inference", "export")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join(parts), path))
    return found


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports (any depth, relative imports made absolute)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _is_component(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and parts[1] in COMPONENTS


def test_the_import_reader_sees_relative_and_nested_imports():
    source = "def f():\n    from ..tasks import get_task\n    from .. import pipeline\n"
    found = imported_names(source, "dialogtune.evaluate.chat")
    assert "dialogtune.tasks" in found and "dialogtune.pipeline" in found


def test_components_never_import_tasks():
    offenders = []
    for module, path in _modules():
        if not _is_component(module):
            continue
        found = imported_names(path.read_text(encoding="utf-8"), module,
                               path.name == "__init__.py")
        offenders += [f"{module} imports {name}" for name in sorted(found)
                      if name.startswith(FORBIDDEN)]
    assert not offenders, offenders


def test_data_never_imports_serve():
    offenders = []
    for module, path in _modules():
        if not module.startswith("dialogtune.data"):
            continue
        found = imported_names(path.read_text(encoding="utf-8"), module,
                               path.name == "__init__.py")
        offenders += [f"{module} imports {name}" for name in sorted(found)
                      if name.startswith("dialogtune.serve")]
    assert not offenders, offenders


def test_run_users_import_only_the_task_registry():
    offenders = []
    for module, path in _modules():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in RUN_USERS:
            continue
        found = imported_names(path.read_text(encoding="utf-8"), module,
                               path.name == "__init__.py")
        offenders += [f"{module} imports {name}" for name in sorted(found)
                      if name.startswith(FORBIDDEN)
                      and name not in ("dialogtune.tasks", "dialogtune.tasks.get_task")]
    assert not offenders, offenders


def test_no_task_branches_outside_tasks():
    pattern = re.compile(r"task ==|task !=|\.task in\b|task in \(")
    hits = [f"{path.relative_to(SRC)}:{number}" for _, path in _modules()
            if "tasks" not in path.relative_to(SRC).parts
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, hits


def test_no_strategy_names_in_tuples_outside_strategies():
    quoted = "|".join(re.escape(f'"{name}"') for name in strategy_names())
    pattern = re.compile(rf"\(\s*({quoted})\s*,")
    hits = [f"{path.relative_to(SRC)}:{number}" for _, path in _modules()
            if "strategies" not in path.relative_to(SRC).parts
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, hits


def test_every_config_field_is_read_outside_config_py():
    source = "\n".join(path.read_text(encoding="utf-8") for _, path in _modules()
                       if path.name != "config.py")
    unread = [f"{section.__name__}.{name}"
              for section in (DataConfig, ModelConfig, StrategyConfig, TrainConfig, RunConfig)
              for name in section.model_fields
              if not re.search(rf"\.{name}\b|[\"']{name}[\"']", source)]
    assert not unread, unread


def test_registry_names_and_lookup():
    assert names() == ["intent", "chat", "pretrain", "nlu", "preference"]
    for name in names():
        task = get_task(name)
        assert task.name == name and task.model_kind in MODEL_KINDS
    assert get_task("intent").model_kind == CLASSIFIER
    assert get_task("chat").model_kind == get_task("pretrain").model_kind == CAUSAL_LM
    assert get_task("preference").model_kind == CAUSAL_LM
    assert get_task("nlu").model_kind == CLASSIFIER
    with pytest.raises(ConfigError, match="unknown task 'slots'"):
        get_task("slots")


def test_unknown_task_is_refused_at_config_time():
    with pytest.raises(ConfigError,
                       match="task: Input should be 'intent', 'chat', 'pretrain', 'nlu' or 'preference'"):
        load_config(None, ["task=slots"])


def test_config_validation_imports_no_torch():
    code = ("import sys\nfrom dialogtune.config import load_config\n"
            "load_config(None, None, task='chat')\n"
            "assert 'torch' not in sys.modules, 'torch imported by config validation'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_capabilities_replace_the_name_tuples():
    strategies = [get_strategy(name) for name in strategy_names()]
    assert {s.name for s in strategies if s.mergeable} == {"lora", "dora", "ia3"}
    assert {s.name for s in strategies if s.prompt_learning} == {
        "prompt-tuning", "p-tuning", "prefix-tuning"}
    for strategy in strategies:
        assert strategy.settings <= set(StrategyConfig.model_fields) - {"name"}
        assert set(strategy.lr) == MODEL_KINDS


@pytest.mark.parametrize("strategy, setting", [("full", "lora_r=16"),
                                               ("lora", "num_virtual_tokens=4"),
                                               ("ia3", "lora_alpha=8"),
                                               ("p-tuning", "prompt_init_text=hello"),
                                               ("prompt-tuning", "freeze_top_k=1")])
def test_a_setting_the_strategy_ignores_is_refused_before_anything_is_written(
        strategy, setting, tmp_path):
    from dialogtune.pipeline import train_run

    cfg = load_config(None, [f"strategy.{setting}"], task="chat", output=str(tmp_path / "run"),
                      **{"strategy.name": strategy, "data.train": "missing.jsonl"})
    key = setting.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^strategy\.{key} does not apply to strategy "
                                          rf"'{strategy}'"):
        train_run(cfg)
    assert not (tmp_path / "run").exists()


def test_defaults_and_saved_configs_never_trip_the_setting_check(tmp_path):
    # a saved config.yaml lists every setting: defaults equal to StrategyConfig's pass
    path = tmp_path / "config.yaml"
    path.write_text(load_config(None, None, task="chat", **{"strategy.name": "full"})
                    .resolved().to_yaml())
    check_settings(load_config(path).strategy)
    check_settings(load_config(None, ["strategy.lora_r=8"], **{"strategy.name": "full"})
                   .strategy)  # the default value changes nothing
    for config in sorted((SRC.parents[1] / "configs").glob("*.yaml")):
        check_settings(load_config(config).resolved().strategy)


def test_causal_lm_strategy_defaults_fill_only_the_strategies_that_read_them():
    def resolved(strategy: str) -> StrategyConfig:
        return load_config(None, None, task="pretrain",
                           **{"strategy.name": strategy}).resolved().strategy

    assert (resolved("dora").lora_r, resolved("dora").lora_dropout) == (16, 0.0)
    assert (resolved("ia3").lora_r, resolved("full").lora_alpha) == (8, 16)
    assert load_config(None, None, task="pretrain").resolved().data.max_length == 256


def test_intent_head_rate_reads_the_multiplier():
    from dialogtune.tasks.intent import head_learning_rate

    assert head_learning_rate(TrainConfig()) == 4e-3  # the measured rate, unchanged
    assert head_learning_rate(TrainConfig(head_lr_multiplier=10)) == pytest.approx(2e-3)


def test_each_task_reads_its_own_data_and_names_its_predictor(tmp_path):
    from helpers import DIALOGUES, write_jsonl
    from helpers import write_intent_csv

    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.inference.intent import Predictor

    docs = tmp_path / "notes.txt"
    docs.write_text("The card arrived.\n\nThe balance is fine.\n", encoding="utf-8")
    files = {"intent": write_intent_csv(tmp_path / "intents.csv"),
             "chat": write_jsonl(tmp_path / "dialogues.jsonl", DIALOGUES), "pretrain": docs}
    for name, path in files.items():
        task = get_task(name)
        assert task.read_data(RunConfig(task=name), str(path)), name
    assert get_task("intent").load_predictor == Predictor.from_run
    assert get_task("chat").load_predictor == get_task("pretrain").load_predictor \
        == ChatPredictor.from_run


def test_a_relative_model_folder_is_stored_absolute(tmp_path, monkeypatch):
    """The run's config is read later from elsewhere (predict, serve, a preference run
    started from this one), where a relative path would point at nothing."""
    from dialogtune.tasks.steps import absolute_model_path

    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert absolute_model_path("models/mine") == str(tmp_path / "models" / "mine")
    (tmp_path / "minilm").mkdir()  # a folder named like an alias: the alias still wins
    assert absolute_model_path("minilm") == "minilm"
    assert absolute_model_path("org/hub-model") == "org/hub-model"  # no such folder: a hub id
    assert absolute_model_path(str(tmp_path)) == str(tmp_path)
