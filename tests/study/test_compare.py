"""``dialogtune compare``: cells trained in child processes on the tiny BERT, their rows,
the report files, resuming without retraining, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from dialogtune.cli import main
from dialogtune.study.cells import base_config, cell_settings
from dialogtune.study.compare import compare_cells

from helpers import write_intent_csv

ROW_KEYS = {"cell", "model", "strategy", "seed", "task", "trainable_parameters",
            "total_parameters", "train_seconds", "peak_memory_mib", "metrics",
            "p50_latency_ms", "latency_measure", "train_examples", "run_dir", "settings",
            "digests"}
SHORT = ["--epochs", "1", "--set", "train.batch_size=8", "--set", "train.min_steps=0"]


@pytest.fixture
def one_thread_children(monkeypatch):
    """Each cell's child process computes on one thread (the machine is shared)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_compare_writes_rows_report_and_plot_and_resumes_without_training(
        tiny_bert, tmp_path, capsys, one_thread_children):
    train = write_intent_csv(tmp_path / "train.csv")
    out = tmp_path / "study"
    args = ["compare", "--task", "intent", "--data", str(train), "--eval-data", str(train),
            "--models", tiny_bert, "--strategies", "full,lora", "--output", str(out),
            "--set", "lora_r=4", *SHORT]
    assert main(args) == 0
    study = json.loads((out / "compare.json").read_text())
    rows = study["rows"]
    assert [r["strategy"] for r in rows] == ["full", "lora"]
    for row in rows:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["model"] == tiny_bert and row["seed"] == 42
        assert {"accuracy", "macro_f1"} <= set(row["metrics"])
        assert row["peak_memory_mib"] > 50 and row["p50_latency_ms"] > 0
        assert row["train_examples"] == 21  # 24 less the 1-per-intent validation split
    full, lora = rows
    assert full["trainable_parameters"] == full["total_parameters"]
    assert lora["trainable_parameters"] < lora["total_parameters"]
    assert lora["settings"]["strategy"] == {"name": "lora", "lora_r": 4}
    assert "lora_r" not in full["settings"]["strategy"]  # dropped where it does not apply
    assert study["quality_metric"] == "accuracy" and study["higher_is_better"] is True
    report = (out / "compare.md").read_text()
    assert report.count(f"| {tiny_bert} |") == 2 and "| accuracy |" in report
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"

    cells = sorted((out / "cells").iterdir())
    stamps = {p: p.stat().st_mtime_ns for c in cells
              for p in (c / "model.safetensors", c / "cell.json", c / "cell.log")}
    capsys.readouterr()
    assert main(args) == 0  # nothing left to run: no cell is retrained or re-evaluated
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "compare.json").read_text())["rows"] == rows

    changed = [a if a != "1" else "2" for a in args]  # --epochs 2 on the same --output
    assert main(changed) == 2
    assert "this cell was run with other settings (train.epochs: 1" in \
        error_line(capsys.readouterr().err)


def test_every_cell_holds_out_the_same_validation_split(tmp_path):
    train = write_intent_csv(tmp_path / "train.csv")
    cells, split = compare_cells("intent", str(train), str(train), ["minilm"],
                                 ["full", "prompt-tuning"], 3, None,
                                 ["train.seed=7"], 1)
    assert split == 7
    assert [c.settings["train"]["seed"] for c in cells] == [7, 8, 9, 7, 8, 9]
    assert {c.settings["data"]["split_seed"] for c in cells} == {7}
    assert len({c.name for c in cells}) == 6


def test_strategy_settings_reach_only_the_strategies_that_read_them(tmp_path):
    base = base_config("intent", "train.csv", None, ["lora_r=4", "num_virtual_tokens=5"], None)
    assert cell_settings(base, {"strategy.name": "full"})["strategy"] == {"name": "full"}
    assert cell_settings(base, {"strategy.name": "prompt-tuning"})["strategy"] == {
        "name": "prompt-tuning", "num_virtual_tokens": 5}


@pytest.mark.parametrize("flags, message", [
    (["--strategies", "full,sparse"], "--strategies: unknown strategy 'sparse'"),
    (["--models", " , "], "--models: give at least one"),
    (["--task", "summarise"], "task: Input should be"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--eval-data", "missing.csv"], "missing.csv: file not found"),
])
def test_bad_compare_input_is_one_line(tmp_path, capsys, flags, message):
    train = write_intent_csv(tmp_path / "train.csv")
    args = {"--task": "intent", "--data": str(train), "--eval-data": str(train),
            "--models": "minilm", "--strategies": "full", "--seeds": "1",
            "--output": str(tmp_path / "out")}
    args.update(dict(zip(flags[::2], flags[1::2])))
    assert main(["compare", *[x for pair in args.items() for x in pair]]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not (tmp_path / "out" / "cells").exists()


def test_split_seed_fixes_the_validation_split_whatever_the_training_seed(tmp_path):
    from dialogtune.config import load_config
    from dialogtune.tasks.intent import load_intent_data

    train = str(write_intent_csv(tmp_path / "train.csv"))

    def held_out(*overrides: str) -> set[str]:
        cfg = load_config(None, list(overrides), task="intent", **{"data.train": train})
        return {r.text for r in load_intent_data(cfg).validation}

    fixed = [held_out(f"train.seed={s}", "data.split_seed=5") for s in range(4)]
    assert all(split == fixed[0] for split in fixed)
    assert fixed[0] == held_out("train.seed=5")  # the default: the training seed
    assert len({frozenset(held_out(f"train.seed={s}")) for s in range(4)}) > 1
