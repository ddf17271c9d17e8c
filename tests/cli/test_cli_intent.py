"""The intent workflow through the command line: train → eval → predict, and its errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import dialogtune
from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.tasks.intent import load_intent_data

from helpers import INTENT_EXAMPLES, write_intent_csv


pytestmark = pytest.mark.usefixtures("one_thread")


def error_line(err: str) -> str:
    """The single 'error: ...' line a user error prints, with no traceback around it."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_train_eval_predict(tiny_bert, intent_csv, tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "out"
    args = ["train", "--task", "intent", "--data", str(intent_csv), "--output", str(run),
            "--model", tiny_bert, "--epochs", "2", "--set", "train.batch_size=4",
            "--set", "train.min_steps=0"]
    assert main(args) == 0
    for name in ("config.yaml", "label_map.json", "train_log.jsonl", "metrics.json",
                 "model.safetensors", "training_curves.png"):
        assert (run / name).is_file(), name
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "intent" and summary["strategy"] == "full"
    assert summary["steps"] == 2 * 6  # 21 training examples in batches of 4, two epochs
    assert json.loads((run / "label_map.json").read_text())["labels"] == sorted(INTENT_EXAMPLES)
    assert "validation" in json.loads((run / "metrics.json").read_text())
    assert (run / "training_curves.png").read_bytes()[:4] == b"\x89PNG"

    assert main(["eval", str(run), "--data", str(intent_csv),
                 "--output", str(out / "metrics.json")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "per_intent",
                "top_confused_pairs", "latency_ms_per_utterance"):
        assert key in metrics, key
    assert set(metrics["per_intent"]) == set(INTENT_EXAMPLES)
    assert sum(v["support"] for v in metrics["per_intent"].values()) == 24
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["latency_ms_per_utterance"] > 0
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    matrix = json.loads((out / "confusion_matrix.json").read_text())
    assert matrix["labels"] == sorted(INTENT_EXAMPLES)
    assert sum(map(sum, matrix["matrix"])) == 24
    printed = capsys.readouterr().out
    assert f"wrote {out / 'metrics.json'}" in printed
    assert metrics["out_of_scope"]["examples"] == 0
    assert metrics["out_of_scope"]["threshold"] == json.loads(
        (run / "run.json").read_text())["oos_threshold"]

    # utterances of an intent the run never saw are out of scope: detection is measured
    mixed = write_intent_csv(tmp_path / "mixed.csv",
                             {**INTENT_EXAMPLES, "weather": ["will it rain", "sunny today?"]})
    assert main(["eval", str(run), "--data", str(mixed), "--oos-threshold", "1.0",
                 "--output", str(out / "oos.json")]) == 0
    oos = json.loads((out / "oos.json").read_text())["out_of_scope"]
    assert (oos["examples"], oos["threshold"], oos["recall"]) == (2, 1.0, 1.0)
    assert oos["in_scope_rejected"] == 1.0 and 0.0 <= oos["auroc"] <= 1.0
    assert '"out_of_scope_recall": 1.0' in capsys.readouterr().out

    assert main(["predict", str(run), "lost card", "check my balance", "--json",
                 "--top-k", "2"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in results] == ["lost card", "check my balance"]
    for result in results:
        assert len(result["intents"]) == 2
        assert {i["intent"] for i in result["intents"]} <= set(INTENT_EXAMPLES)
        first, second = (i["probability"] for i in result["intents"])
        assert 1.0 >= first >= second >= 0.0
        assert isinstance(result["out_of_scope"], bool)

    # the run exists now: training into it again without --resume is refused
    assert main(args) == 2
    assert "already holds a run" in error_line(capsys.readouterr().err)
    # --resume continues from the run's own config (nothing left to do here)
    assert main(["train", "--output", str(run), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 12


def test_bad_data_is_one_line_with_file_and_line(tiny_bert, tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nlost card,card_lost\nsend money,transfer,oops\n")
    code = main(["train", "--data", str(data), "--output", str(tmp_path / "run"),
                 "--model", tiny_bert])
    assert code == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {data}:3: malformed row")


def test_non_utf8_data(tiny_bert, tmp_path, capsys):
    data = tmp_path / "latin1.csv"
    data.write_bytes("text,label\nlost card,card\ncafé,food\n".encode("latin-1"))
    assert main(["train", "--data", str(data), "--output", str(tmp_path / "run"),
                 "--model", tiny_bert]) == 2
    assert error_line(capsys.readouterr().err).startswith(f"error: {data}:3: not valid UTF-8")


def test_unknown_model_offline(intent_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "no-such-org/no-such-model-dialogtune"
    assert main(["train", "--data", str(intent_csv), "--output", str(tmp_path / "run"),
                 "--model", name]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"model '{name}'" in line and "minilm" in line and "offline" in line


def test_eval_and_predict_errors(tmp_path, intent_csv, capsys):
    assert main(["eval", str(tmp_path), "--data", str(intent_csv)]) == 2
    assert "not a dialogtune run" in error_line(capsys.readouterr().err)
    assert main(["predict", str(tmp_path), "hello"]) == 2
    assert "not a dialogtune run" in error_line(capsys.readouterr().err)


def test_usage_error_exit_code(capsys):
    assert main(["train", "--no-such-flag"]) == 2
    assert "no-such-flag" in capsys.readouterr().err
    assert main(["eval", "RUN", "--data", "t.csv", "--oos-threshold", "1.5"]) == 2
    assert "--oos-threshold" in capsys.readouterr().err


def test_light_commands_do_not_import_torch():
    """`import dialogtune` and `--help` stay cheap; the public names still resolve."""
    probe = ("import sys, dialogtune, dialogtune.cli\n"
             "assert dialogtune.cli.main(['--help']) == 0\n"
             "assert 'torch' not in sys.modules, 'torch imported eagerly'\n"
             "assert 'transformers' not in sys.modules, 'transformers imported eagerly'\n"
             "assert dialogtune.Predictor.__name__ == 'Predictor'\n"
             "assert 'torch' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with pytest.raises(AttributeError):
        dialogtune.no_such_name  # noqa: B018


def test_training_on_every_example(tiny_bert, intent_csv, tmp_path, capsys):
    """data.val_fraction=0: no hold-out, last weights kept, no threshold; predict still works."""
    run = tmp_path / "run"
    assert main(["train", "--task", "intent", "--data", str(intent_csv), "--output", str(run),
                 "--model", tiny_bert, "--epochs", "1", "--set", "train.batch_size=4",
                 "--set", "train.min_steps=0", "--set", "data.val_fraction=0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train_examples"] == 24 and summary["validation_examples"] == 0
    assert summary["steps"] == 6 and summary["best_epoch"] is None
    assert "oos_threshold" not in summary
    assert main(["predict", str(run), "lost card", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)[0]
    assert result["out_of_scope"] is False and result["intents"][0]["intent"] in INTENT_EXAMPLES


def few_per_intent(tmp_path, count: int, *overrides: str):
    """An intent config on the first ``count`` example utterances of each intent."""
    few = {label: texts[:count] for label, texts in INTENT_EXAMPLES.items()}
    path = write_intent_csv(tmp_path / f"few{count}.csv", few)
    return load_config(None, list(overrides), **{"data.train": str(path), "task": "intent"})


@pytest.mark.parametrize("count, held_out", [(4, False), (7, False), (8, True)])
def test_below_eight_per_intent_the_default_trains_on_every_example(tmp_path, caplog, count,
                                                                    held_out):
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        data = load_intent_data(few_per_intent(tmp_path, count))
    assert bool(data.validation) == held_out
    assert len(data.train) + len(data.validation) == count * len(INTENT_EXAMPLES)
    said = [r.getMessage() for r in caplog.records if "training on all of them" in r.getMessage()]
    assert bool(said) != held_out
    assert not said or said[0].startswith(f"{count:.1f} utterances per intent")


def test_large_hold_out_share_advises_training_on_all_data(tmp_path, caplog):
    """4 utterances an intent with a split asked for: it holds out 1 in 4, and the log says
    what that costs; with val_fraction=0 nothing is held out and nothing said."""
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        data = load_intent_data(few_per_intent(tmp_path, 4, "data.val_fraction=0.1"))
    intents = len(INTENT_EXAMPLES)
    assert len(data.validation) == intents
    advice = [r.getMessage() for r in caplog.records if "val_fraction=0" in r.getMessage()]
    assert advice and f"holds out {intents} of {4 * intents}" in advice[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        assert load_intent_data(few_per_intent(tmp_path, 4, "data.val_fraction=0")
                                ).validation == []
    assert not [r for r in caplog.records if "val_fraction=0" in r.getMessage()]
    assert not [r for r in caplog.records if "training on all of them" in r.getMessage()]
