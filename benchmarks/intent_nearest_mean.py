"""The floor a trained intent head must beat at little data: nearest intent mean, untrained.

Embeds BANKING77 with the embedded MiniLM as dialogtune's intent model does (mean pooling),
takes ``k`` random training utterances per intent (the sample of
``intent_small_data.py``), and classifies the full test set (3,080 utterances) by the
cosine to each intent's mean embedding. No training: a reference for ``model.head_init``.

Usage: ``python benchmarks/intent_nearest_mean.py [--k 5 10] [--seeds 1]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intent_banking77 import DEFAULT_DATA  # noqa: E402
from intent_small_data import rows_by_intent, sample_rows  # noqa: E402
from machine import machine  # noqa: E402


def embed(encoder, tokenizer, texts: list[str]) -> torch.Tensor:
    from dialogtune.models.loading import pool_hidden

    out = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True,
                              max_length=64, return_tensors="pt")
            hidden = encoder(**batch).last_hidden_state
            out.append(F.normalize(pool_hidden(hidden, batch["attention_mask"]), dim=-1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from dialogtune.models.loading import load_encoder, load_tokenizer

    torch.set_num_threads(args.threads)
    print("machine:", json.dumps(machine(args.threads)), flush=True)
    encoder, source = load_encoder("minilm")
    tokenizer = load_tokenizer(source)
    encoder.eval()
    with (args.data / "test.csv").open(newline="", encoding="utf-8") as handle:
        test = list(csv.DictReader(handle))
    test_x = embed(encoder, tokenizer, [r["text"] for r in test])
    for k in args.k:
        for seed in args.seeds:
            rows = sample_rows(rows_by_intent(args.data), k, random.Random(seed))
            labels = sorted({r["category"] for r in rows})
            index = {label: i for i, label in enumerate(labels)}
            train_x = embed(encoder, tokenizer, [r["text"] for r in rows])
            train_y = torch.tensor([index[r["category"]] for r in rows])
            means = F.normalize(torch.stack([train_x[train_y == c].mean(0)
                                             for c in range(len(labels))]), dim=-1)
            gold = torch.tensor([index[r["category"]] for r in test])
            accuracy = ((test_x @ means.T).argmax(1) == gold).float().mean().item()
            print(json.dumps({"k": k, "seed": seed, "accuracy": round(accuracy, 4)}), flush=True)


if __name__ == "__main__":
    main()
