"""BANKING77 intent benchmark: dialogtune's default command vs the plain Trainer recipe.

Both run in this one process tree, on the same machine, one after the other:
- dialogtune: ``dialogtune train --task intent --data train.csv --output RUN`` (defaults),
  then ``dialogtune eval RUN --data test.csv``;
- peer: AutoModelForSequenceClassification + transformers.Trainer, 3 epochs, batch 16,
  learning rate 5e-5, dynamic padding (the recipe dialogue teams start from).

Prints train seconds, test accuracy and macro-F1 for both, and the ratios; ``--json`` writes
them to a file. Usage: ``python benchmarks/intent_banking77.py [--strategy lora ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"


def run_dialogtune(data: Path, out: Path, extra: list[str]) -> dict:
    """The user's command, timed as a whole and by the loop's own clock."""
    cli = [sys.executable, "-m", "dialogtune.cli"]
    started = time.perf_counter()
    subprocess.run([*cli, "train", "--task", "intent", "--data", str(data / "train.csv"),
                    "--output", str(out), *extra], check=True)
    wall = time.perf_counter() - started
    metrics_path = out / "eval" / "metrics.json"
    subprocess.run([*cli, "eval", str(out), "--data", str(data / "test.csv"),
                    "--output", str(metrics_path)], check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "run.json").read_text())
    metrics = json.loads(metrics_path.read_text())
    return {"train_seconds": summary["train_seconds"], "command_seconds": round(wall, 1),
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "trainable_parameters": summary["trainable_parameters"],
            "total_parameters": summary["total_parameters"],
            "latency_ms_per_utterance": metrics["latency_ms_per_utterance"]}


def run_peer(data: Path, out: Path, epochs: float) -> dict:
    """The plain Trainer recipe on the same encoder."""
    import numpy as np
    from datasets import load_dataset
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    from dialogtune.models.loading import resolve_source

    source = resolve_source("minilm")
    raw = load_dataset("csv", data_files={"train": str(data / "train.csv"),
                                          "test": str(data / "test.csv")})
    labels = sorted(set(raw["train"]["category"]))
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoded = raw.map(lambda b: {**tokenizer(b["text"], truncation=True),
                                 "labels": [index[c] for c in b["category"]]},
                      batched=True, remove_columns=["text", "category"])
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index)
    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs,
                             per_device_train_batch_size=16, per_device_eval_batch_size=64,
                             learning_rate=5e-5, save_strategy="no", report_to=[],
                             logging_steps=100, use_cpu=True, seed=42)
    trainer = Trainer(model=model, args=args, train_dataset=encoded["train"],
                      data_collator=DataCollatorWithPadding(tokenizer))
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    predictions = trainer.predict(encoded["test"])
    y_pred = np.argmax(predictions.predictions, axis=1)
    y_true = predictions.label_ids
    return {"train_seconds": round(train_seconds, 1),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--peer-epochs", type=float, default=3.0)
    parser.add_argument("--skip-peer", action="store_true", help="only time dialogtune")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("extra", nargs="*", help="extra dialogtune train flags, after --")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-b77-"))
    results = {"dialogtune": run_dialogtune(args.data_root, work / "dialogtune", args.extra)}
    print("dialogtune:", json.dumps(results["dialogtune"]), flush=True)
    if not args.skip_peer:
        results["peer_trainer"] = run_peer(args.data_root, work / "peer", args.peer_epochs)
        print("peer (Trainer):", json.dumps(results["peer_trainer"]), flush=True)
        ours, peer = results["dialogtune"], results["peer_trainer"]
        results["ratios"] = {
            "train_time_ours_over_peer": round(ours["train_seconds"] / peer["train_seconds"], 3),
            "command_time_ours_over_peer": round(ours["command_seconds"] / peer["train_seconds"], 3),
            "accuracy_gain": round(ours["accuracy"] - peer["accuracy"], 4),
            "macro_f1_gain": round(ours["macro_f1"] - peer["macro_f1"], 4)}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
