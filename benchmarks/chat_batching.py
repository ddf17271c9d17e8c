"""Chat batching micro-benchmark: training tokens/s of SmolLM2-135M + LoRA on SGD dialogues.

Compares, on the same dialogues and the same optimizer step:
  - full-vocabulary logits at every position (what ``model(labels=...)`` does) vs the LM head
    applied only where the next token is trained (``dialogtune.models.lm.lm_loss``);
  - one dialogue per step vs several packed into one row (block-diagonal attention via
    position_ids) vs several right-padded rows (length-grouped);
  - LoRA dropout 0.05 vs 0.

    python benchmarks/chat_batching.py [--data-root ../shared/data] [--dialogues 24]

Prints one line per configuration (tokens fed per second, assistant tokens trained per
second) and a markdown table for benchmarks/RESULTS.md. The first step of each
configuration is a warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def measure(model, optimizer, items, loss_fn, per_step: int, layout: str, pad_id: int):
    from dialogtune.data.encode.chat_batches import pack_sequences, pad_sequences

    fed = trained = 0
    started = None
    for start in range(0, len(items), per_step):
        if start == per_step:  # after one warm-up step
            started, fed, trained = time.perf_counter(), 0, 0
        chunk = items[start:start + per_step]
        batch = pack_sequences(chunk) if layout == "pack" else pad_sequences(chunk, pad_id)
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        fed += sum(len(c.input_ids) for c in chunk)
        trained += sum(c.trained for c in chunk)
    seconds = time.perf_counter() - started
    return fed / seconds, trained / seconds, seconds


def full_logits_loss(model, batch):
    """The usual way: logits over the whole vocabulary at every position."""
    return model(**batch, use_cache=False).loss


def build(dropout: float):
    import torch

    from dialogtune.config import StrategyConfig
    from dialogtune.models.loading import load_causal_lm
    from dialogtune.strategies import CAUSAL_LM, apply_strategy

    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm("smollm2")
    model = apply_strategy(model, StrategyConfig(name="lora", lora_r=16, lora_alpha=32,
                                                 lora_dropout=dropout), CAUSAL_LM)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, tokenizer, optimizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domain", default="sgd_banks")
    parser.add_argument("--dialogues", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from dialogtune.data.encode.chat import encode_dialogues
    from dialogtune.data.formats import read_dialogues
    from dialogtune.models.lm import lm_loss

    torch.set_num_threads(args.threads)
    rows = []
    for dropout in (0.05, 0.0):
        model, tokenizer, optimizer = build(dropout)
        encoded, _ = encode_dialogues(tokenizer, read_dialogues(
            args.data_root / args.domain / "train.jsonl"), 1024)
        random.Random(0).shuffle(encoded)
        items = encoded[:args.dialogues]
        configs = [("full logits", full_logits_loss, 1, "pack"),
                   ("trained positions only", lm_loss, 1, "pack"),
                   ("trained positions only", lm_loss, 4, "pack"),
                   ("trained positions only", lm_loss, 4, "pad")]
        if dropout:
            configs = configs[:2]
        for name, loss_fn, per_step, layout in configs:
            fed, trained, seconds = measure(model, optimizer, items, loss_fn, per_step,
                                            layout, tokenizer.pad_token_id)
            row = (name, per_step, layout, dropout, fed, trained, seconds)
            rows.append(row)
            print(f"{name:24s} {per_step}/step {layout:4s} dropout={dropout:<4} "
                  f"{fed:7.1f} tok/s fed {trained:6.1f} tok/s trained ({seconds:.0f} s)",
                  flush=True)
    print("\n| LM head | dialogues/step | layout | LoRA dropout | tokens fed/s | "
          "assistant tokens trained/s |\n|---|---|---|---|---|---|")
    for name, per_step, layout, dropout, fed, trained, _ in rows:
        print(f"| {name} | {per_step} | {layout} | {dropout} | {fed:.1f} | {trained:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
