"""``--task nlu`` end to end: train (every format, a few strategies), eval's intent and
slot metrics, predict's slots with offsets into the original text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FAST, nlu_records, tiny_nlu_bert, tiny_nlu_run, write_jsonl

from dialogtune.cli import main
from dialogtune.config import RunConfig, load_config
from dialogtune.inference.intent import load_classifier
from dialogtune.pipeline import evaluate_run, train_run
from dialogtune.tasks import get_task

INTENT_KEYS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "out_of_scope",
               "top_confused_pairs", "latency_ms_per_utterance")
SLOT_KEYS = ("slot_f1", "slot_precision", "slot_recall", "sentence_accuracy", "per_slot",
             "slot_errors")


@pytest.fixture(scope="module")
def nlu_bert(tmp_path_factory) -> str:
    return tiny_nlu_bert(tmp_path_factory.mktemp("nlu_bert"))


@pytest.fixture(scope="module")
def nlu_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("nlu_data") / "train.jsonl", nlu_records())


def config(run: Path, data: Path, model: str, *overrides: str, eval_data: Path | None = None):
    return load_config(None, [*FAST, *overrides], **{
        "task": "nlu", "data.train": str(data), "data.eval": str(eval_data or data),
        "model.name": model, "output": str(run)})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A full fine-tune that learns the training set (validated on it)."""
    return tiny_nlu_run(tmp_path_factory.mktemp("nlu_runs"))


def test_train_writes_an_nlu_run(trained):
    summary = json.loads((trained / "run.json").read_text())
    assert summary["task"] == "nlu" and summary["slot_types"] == 3
    assert summary["labels"] == 2 and summary["steps"] == 32
    assert 0 < summary["oos_threshold"] < 1  # calibrated on the validation set
    slots = json.loads((trained / "slot_labels.json").read_text())
    assert slots["slots"] == ["account", "amount", "recipient"]
    assert slots["labels"][0] == "O" and "B-amount" in slots["labels"]
    assert json.loads((trained / "label_map.json").read_text())["labels"] == ["balance",
                                                                              "transfer"]
    validation = json.loads((trained / "metrics.json").read_text())["validation"]
    assert validation["slot_f1"] > 0.9 and validation["sentence_accuracy"] > 0.8


def test_eval_writes_intent_and_slot_metrics(trained, nlu_data, tmp_path):
    out = tmp_path / "m.json"
    assert main(["eval", str(trained), "--data", str(nlu_data), "--output", str(out)]) == 0
    metrics = json.loads(out.read_text())
    for key in INTENT_KEYS + SLOT_KEYS:
        assert key in metrics, key
    assert metrics["accuracy"] == 1.0
    assert metrics["slot_f1"] > 0.9 and metrics["sentence_accuracy"] > 0.8
    rows = {row["slot"]: row for row in metrics["per_slot"]}
    assert set(rows) == {"account", "amount", "recipient"}
    assert rows["amount"]["support"] == 16 and rows["account"]["support"] == 16


def test_eval_reports_slot_errors_on_mislabelled_data(trained, tmp_path):
    """Gold labels swapped: the errors name the wrong label, with the example."""
    swapped = []
    for record in nlu_records()[:4]:  # transfers: amount and recipient
        names = {"amount": "recipient", "recipient": "amount"}
        swapped.append({**record, "slots": [{**s, "slot": names[s["slot"]]}
                                            for s in record["slots"]]})
    metrics = evaluate_run(trained, str(write_jsonl(tmp_path / "bad.jsonl", swapped)))
    assert metrics["slot_f1"] < 0.2 and metrics["sentence_accuracy"] == 0.0
    kinds = {(e["kind"], e["gold_slot"], e["predicted_slot"]) for e in metrics["slot_errors"]}
    assert ("wrong_label", "amount", "recipient") in kinds
    error = metrics["slot_errors"][0]
    assert error["count"] >= 1 and error["examples"][0]["text"]


def test_predict_json_slots_index_the_original_text(trained, capsys):
    texts = ["Send FIFTY dollars to  Omar", "check my savings balance"]
    assert main(["predict", str(trained), *texts, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    first, second = results
    assert first["intents"][0]["intent"] == "transfer"
    assert second["intents"][0]["intent"] == "balance"
    found = {s["slot"]: s for s in first["slots"]}
    assert set(found) == {"amount", "recipient"}
    for result in results:
        for slot in result["slots"]:
            assert result["text"][slot["start"]:slot["end"]] == slot["value"]
            assert 0 < slot["confidence"] <= 1
    assert found["amount"]["value"] == "FIFTY" and found["recipient"]["value"] == "Omar"
    assert [s["value"] for s in second["slots"]] == ["savings"]


def test_predict_plain_prints_a_line_per_slot(trained, capsys):
    assert main(["predict", str(trained), "transfer ten dollars to lena"]) == 0
    out = capsys.readouterr().out
    assert "-> transfer" in out
    assert "amount = 'ten' [9:12]" in out and "recipient = 'lena' [24:28]" in out


@pytest.mark.parametrize("strategy", ["lora", "prompt-tuning"])
def test_strategies_train_and_reload(strategy, nlu_bert, nlu_data, tmp_path, one_thread):
    """Each strategy trains the joint model, and the saved run predicts what the trained
    one validated: eval on the validation file gives its best epoch's slot scores."""
    run = tmp_path / strategy
    summary = train_run(config(run, nlu_data, nlu_bert, "train.epochs=4",
                               f"strategy.name={strategy}", "strategy.num_virtual_tokens=4"
                               if strategy == "prompt-tuning" else "strategy.lora_r=4"))
    assert summary["strategy"] == strategy and summary["steps"] == 16
    assert summary["trainable_parameters"] < summary["total_parameters"]
    validation = json.loads((run / "metrics.json").read_text())["validation"]
    metrics = evaluate_run(run, str(nlu_data))
    for key in ("slot_f1", "slot_precision", "sentence_accuracy", "accuracy"):
        assert metrics[key] == pytest.approx(validation[key]), key


def test_every_nlu_format_trains(nlu_bert, tmp_path):
    """Rasa YAML, CoNLL (no intents: one intent) and dialogue turns with the previous
    assistant turn as context (data.context=previous) all train and predict slots."""
    rasa = tmp_path / "nlu.yml"
    rasa.write_text("nlu:\n- intent: transfer\n  examples: |\n"
                    "    - send [fifty](amount) dollars to [amir](recipient)\n"
                    "    - send [ten](amount) dollars to [lena](recipient)\n"
                    "- intent: balance\n  examples: |\n"
                    "    - check my [savings](account) balance\n"
                    "    - check my [joint](account) balance\n", encoding="utf-8")
    conll = tmp_path / "train.conll"
    conll.write_text("send O\nfifty B-amount\ndollars O\n\nsend O\nten B-amount\n"
                     "dollars O\n", encoding="utf-8")
    dialogues = tmp_path / "dialogues.jsonl"
    write_jsonl(dialogues, [
        {"messages": [{"role": "assistant", "content": "which account"},
                      {"role": "user", "content": "savings", "intent": "balance",
                       "slots": [{"slot": "account", "start": 0, "end": 7}]}]},
        {"messages": [{"role": "user", "content": "send ten dollars", "intent": "transfer",
                       "slots": [{"slot": "amount", "start": 5, "end": 8}]}]}])
    for path, extra, slots in ((rasa, [], ["account", "amount", "recipient"]),
                               (conll, [], ["amount"]),
                               (dialogues, ["data.context=previous"], ["account", "amount"])):
        run = tmp_path / f"run-{path.suffix[1:]}"
        sets = [f"--set={item}" for item in [*FAST, "train.epochs=1", *extra]]
        assert main(["train", "--task", "nlu", "--data", str(path), "--eval-data", str(path),
                     "--model", nlu_bert, "--output", str(run), *sets]) == 0, path
        summary = json.loads((run / "run.json").read_text())
        assert summary["task"] == "nlu" and summary["train_examples"] >= 2, path
        assert json.loads((run / "slot_labels.json").read_text())["slots"] == slots
        assert "slots" in load_classifier(run).classify(["send ten dollars"])[0]
    task = get_task("nlu")
    examples = task.read_data(RunConfig(task="nlu", data={"context": "previous"}),
                              str(dialogues))
    assert examples[0].context == "which account" and examples[1].context is None
    assert {e.intent for e in task.read_data(RunConfig(task="nlu"), str(conll))} == {"none"}


def test_nlu_defaults_fill_the_unset_settings():
    cfg = get_task("nlu").resolve(RunConfig(task="nlu"))
    assert cfg.model.name == "minilm" and cfg.strategy.name == "full"
    assert cfg.data.max_length == 64 and cfg.train.epochs == 4  # measured on SNIPS (tasks/nlu.py)


def test_predict_refuses_a_chat_run(tmp_path):
    (tmp_path / "config.yaml").write_text("task: chat\n")
    (tmp_path / "model.safetensors").write_bytes(b"")
    from dialogtune.errors import DialogtuneError

    with pytest.raises(DialogtuneError, match="a chat run, not an intent or NLU run"):
        load_classifier(tmp_path)


def test_dialogue_data_without_context_gets_the_measured_hint(tmp_path, caplog):
    import logging

    from dialogtune.config import RunConfig
    from dialogtune.tasks.nlu import _hint_context

    dialogues = write_jsonl(tmp_path / "d.jsonl", [{"messages": [
        {"role": "assistant", "content": "Which account?"},
        {"role": "user", "content": "checking", "intent": "balance", "slots": []}]}])
    utterances = write_jsonl(tmp_path / "u.jsonl", [{"text": "hi", "intent": "greet"}])
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        _hint_context(RunConfig(task="nlu", data={"train": str(dialogues)}))
        assert "data.context=previous" in caplog.text
        caplog.clear()
        _hint_context(RunConfig(task="nlu", data={"train": str(dialogues), "context": "previous"}))
        _hint_context(RunConfig(task="nlu", data={"train": str(utterances)}))
        assert caplog.text == ""


@pytest.mark.parametrize("choice,expected", [("first", False), ("all", True)])
def test_slot_label_setting_reaches_the_batches(nlu_data, tmp_path, monkeypatch, choice,
                                                expected):
    """``data.slot_labels`` chooses first-piece or every-piece slot labels for training."""
    import dialogtune.tasks.nlu as nlu

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt  # stop before any training step

    monkeypatch.setattr(nlu, "nlu_batches", capture)
    model = tiny_nlu_bert(tmp_path / "bert")
    with pytest.raises(KeyboardInterrupt):
        train_run(config(tmp_path / "run", nlu_data, model, f"data.slot_labels={choice}"))
    assert seen["all_subwords"] is expected
