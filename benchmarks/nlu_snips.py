"""SNIPS joint NLU benchmark: dialogtune's default ``--task nlu`` vs a plain token-classification peer.

Both run in this one process tree, on the same machine, one after the other:
- dialogtune: ``dialogtune train --task nlu --data train.jsonl --eval-data validation.jsonl
  --output RUN`` (defaults; SNIPS's own validation split picks the epoch, as in the papers),
  then ``dialogtune eval RUN --data test.jsonl``;
- peer (slots only): AutoModelForTokenClassification + transformers.Trainer on the same
  encoder, whitespace words labelled B/I/O on their first sub-word, 3 epochs, batch 16,
  learning rate 5e-5, dynamic padding: the seed's sequence-classification recipe applied to
  tokens. It predicts no intent, so it has no sentence accuracy.

One scorer for both: the peer's word tags become character spans and go through
``dialogtune.evaluate.slots.slot_scores``, the function ``dialogtune eval`` uses (exact
span + label, micro; equal to seqeval's on word-aligned data). Prints the CPU model and
thread count beside the figures. Usage (take the benchmark lock, as the other scripts do):

    flock /tmp/dialogtune-bench.lock python benchmarks/nlu_snips.py --threads 2 --json out.json
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

from machine import machine

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "snips"



def run_dialogtune(data: Path, out: Path, threads: int, extra: list[str],
                   train_file: str = "train.jsonl", test_file: str = "test.jsonl") -> dict:
    """The user's commands, timed by the loop's own clock and as a whole."""
    cli = [sys.executable, "-m", "dialogtune.cli"]
    started = time.perf_counter()
    validation = ["--eval-data", str(data / "validation.jsonl")] \
        if (data / "validation.jsonl").exists() else []
    subprocess.run([*cli, "train", "--task", "nlu", "--data", str(data / train_file),
                    *validation, "--output", str(out), "--set", f"train.num_threads={threads}",
                    *extra], check=True)
    wall = time.perf_counter() - started
    metrics_path = out / "eval" / "metrics.json"
    subprocess.run([*cli, "eval", str(out), "--data", str(data / test_file),
                    "--output", str(metrics_path)], check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "run.json").read_text())
    metrics = json.loads(metrics_path.read_text())
    keys = ("accuracy", "slot_f1", "slot_precision", "slot_recall", "sentence_accuracy",
            "latency_ms_per_utterance")
    return {"train_seconds": summary["train_seconds"], "command_seconds": round(wall, 1),
            **{k: summary.get(k) for k in ("unknown_characters", "added_tokens", "steps",
                                           "best_epoch", "precision", "mfu", "peak_gflops")},
            **{k: metrics.get(k) for k in keys}}


def words_of(text: str) -> list[tuple[int, int]]:
    """(start, length) of each whitespace word."""
    spans, start = [], None
    for i, ch in enumerate(text + " "):
        if ch.isspace():
            if start is not None:
                spans.append((start, i - start))
            start = None
        elif start is None:
            start = i
    return spans


def word_tags(example, words: list[tuple[int, int]]) -> list[str]:
    tags = ["O"] * len(words)
    for span in example.slots:
        inside = [i for i, (s, n) in enumerate(words) if s >= span.start and s + n <= span.end]
        for j, i in enumerate(inside):
            tags[i] = ("B-" if j == 0 else "I-") + span.slot
    return tags


def run_peer(data: Path, out: Path, epochs: float, threads: int, limit: int | None = None
             ) -> dict:
    """Token classification with the plain Trainer; scored by dialogtune's span scorer."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForTokenClassification, AutoTokenizer,
                              DataCollatorForTokenClassification, Trainer, TrainingArguments)

    from dialogtune.data.formats.nlu import read_nlu_examples
    from dialogtune.data.formats.conll import bio_spans
    from dialogtune.data.records import NluExample
    from dialogtune.evaluate.slots import slot_scores
    from dialogtune.models.loading import resolve_source

    torch.set_num_threads(threads)
    train, test = (read_nlu_examples(str(data / f"{s}.jsonl"))[:limit]
                   for s in ("train", "test"))
    labels = ["O"] + sorted({f"{p}-{s.slot}" for e in train for s in e.slots for p in "BI"})
    index = {tag: i for i, tag in enumerate(labels)}
    source = resolve_source("minilm")
    tokenizer = AutoTokenizer.from_pretrained(source)

    def encode(examples):
        rows = []
        for example in examples:
            words = words_of(example.text)
            tokens = [example.text[s:s + n] for s, n in words]
            enc = tokenizer(tokens, is_split_into_words=True, truncation=True, max_length=64)
            tags, previous = word_tags(example, words), None
            label_ids = []
            for word in enc.word_ids():
                first = word is not None and word != previous
                label_ids.append(index.get(tags[word], 0) if first else -100)
                previous = word
            rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                         "labels": label_ids})
        return Dataset.from_list(rows)

    model = AutoModelForTokenClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index)
    args = TrainingArguments(output_dir=str(out), num_train_epochs=epochs,
                             per_device_train_batch_size=16, per_device_eval_batch_size=64,
                             learning_rate=5e-5, save_strategy="no", report_to=[],
                             logging_steps=200, use_cpu=True, seed=42)
    trainer = Trainer(model=model, args=args, train_dataset=encode(train),
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    encoded_test = encode(test)
    logits = trainer.predict(encoded_test).predictions
    predictions = []
    for example, row, scores in zip(test, encoded_test, logits):
        words = words_of(example.text)
        first = [i for i, label in enumerate(row["labels"]) if label != -100]
        tags = [labels[int(np.argmax(scores[i]))] for i in first]
        spans = bio_spans(tags, [s for s, _ in words[:len(tags)]],
                          [n for _, n in words[:len(tags)]], repair=True)
        predictions.append(NluExample(example.text, example.intent, tuple(spans)))
    return {"train_seconds": round(train_seconds, 1), **slot_scores(test, predictions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peer-epochs", type=float, default=3.0)
    parser.add_argument("--skip-peer", action="store_true", help="only run dialogtune")
    parser.add_argument("--peer-only", action="store_true", help="only run the peer")
    parser.add_argument("--limit", type=int, help="peer: first N examples (a smoke test)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("extra", nargs="*", help="extra dialogtune train flags, after --")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    host = machine(args.threads)
    print("machine:", json.dumps(host), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-snips-"))
    results: dict = {"machine": host}
    if not args.peer_only:
        results["dialogtune"] = run_dialogtune(args.data_root, work / "dialogtune",
                                               args.threads, args.extra)
        print("dialogtune:", json.dumps(results["dialogtune"]), flush=True)
    if not args.skip_peer:
        results["peer_token_classification"] = run_peer(
            args.data_root, work / "peer", args.peer_epochs, args.threads, args.limit)
        print("peer:", json.dumps(results["peer_token_classification"]), flush=True)
    if "dialogtune" in results and "peer_token_classification" in results:
        ours, peer = results["dialogtune"], results["peer_token_classification"]
        results["slot_f1_gain"] = round(ours["slot_f1"] - peer["slot_f1"], 4)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
