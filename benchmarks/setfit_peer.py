"""SetFit, the few-shot peer, on an intent split: the library's own recipe on our encoder.

SetFit (``pip install setfit``, 1.2) fine-tunes a sentence encoder on pairs of training
utterances (same intent → cosine 1, different → 0; ``num_iterations`` positive and negative
pairs per utterance) and then fits a logistic regression on the tuned embeddings. Its
defaults: 20 iterations, batch 16, one epoch, CosineSimilarityLoss. Run on the embedded
MiniLM, so the comparison with dialogtune's default is recipe against recipe.

Usage: ``python benchmarks/setfit_peer.py DIR [--seed 1] [--iterations 20]`` where DIR
holds ``train.csv`` and ``test.csv`` (``text``, ``category``); prints one JSON row
(accuracy, macro-F1, train seconds, latency). ``intent_small_data.py --variants "setfit
(peer)"`` calls it in a child process.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path


def read_split(path: Path):
    """A CSV split as a ``datasets.Dataset`` with ``text`` and ``label`` columns."""
    from datasets import Dataset

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return Dataset.from_dict({"text": [r["text"] for r in rows],
                              "label": [r["category"] for r in rows]})


def run_setfit(data: Path, seed: int, iterations: int, threads: int) -> dict:
    """Train SetFit with its defaults (but ``iterations``) and score it on the test split."""
    import torch
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.metrics import accuracy_score, f1_score

    from dialogtune.models.loading import resolve_source

    torch.set_num_threads(threads)
    train, test = read_split(data / "train.csv"), read_split(data / "test.csv")
    model = SetFitModel.from_pretrained(resolve_source("minilm"))
    with tempfile.TemporaryDirectory(prefix="setfit-") as scratch:
        args = TrainingArguments(output_dir=scratch, save_strategy="no", batch_size=16,
                                 num_iterations=iterations, num_epochs=1, seed=seed,
                                 report_to="none", show_progress_bar=False)
        started = time.perf_counter()
        Trainer(model=model, args=args, train_dataset=train).train()
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    predicted = list(model.predict(test["text"], batch_size=64))
    predict_seconds = time.perf_counter() - started
    return {"system": "setfit", "iterations": iterations, "threads": threads,
            "train_seconds": round(train_seconds, 1),
            "accuracy": accuracy_score(test["label"], predicted),
            "macro_f1": f1_score(test["label"], predicted, average="macro"),
            "latency_ms_per_utterance": round(1000 * predict_seconds / len(test), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with train.csv and test.csv")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20, help="SetFit num_iterations")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run_setfit(args.data, args.seed, args.iterations, args.threads)))


if __name__ == "__main__":
    main()
