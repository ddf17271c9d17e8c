"""Chat training step options: torch.compile and thread count, tokens/s of the same steps.

    flock /tmp/dialogtune-bench.lock .venv/bin/python benchmarks/chat_compile.py \\
        [--domain sgd_banks] [--dialogues 24] [--warmup 3] [--precision auto]

SmolLM2-135M-Instruct (embedded) with the chat defaults' LoRA (r 16 / alpha 32 on every
linear layer, no dropout), one dialogue per step packed as the training loop packs it, the
LM head only on trained positions (``models.lm.lm_loss``, dialogtune's loss), AdamW, under
the precision ``train.precision`` would pick here. Rows:

- eager, 2 threads and 1 thread (the thread setting: is the second core worth it?);
- ``torch.compile(model, dynamic=True)`` (inductor), 2 threads: its first steps (compiling,
  recompiling for new shapes) are timed apart as warm-up, then the same steps as eager.

Each row: tokens fed per second over the timed steps, seconds of warm-up, and the loss of
the first timed step (compiled and eager must agree). Prints the CPU model and flags.
Issue 14, item 4: "for chat, measure torch.compile ... and thread settings, keep what wins".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HERE = Path(__file__).resolve().parent


def build():
    import torch

    from dialogtune.config import StrategyConfig
    from dialogtune.models.loading import load_causal_lm
    from dialogtune.strategies import CAUSAL_LM, apply_strategy

    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm("smollm2")
    model = apply_strategy(model, StrategyConfig(name="lora", lora_r=16, lora_alpha=32,
                                                 lora_dropout=0.0), CAUSAL_LM)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, tokenizer, optimizer


def step(model, optimizer, item, precision: str) -> float:
    from dialogtune.data.encode.chat_batches import pack_sequences
    from dialogtune.models.lm import lm_loss
    from dialogtune.precision import autocast

    with autocast(precision):
        loss = lm_loss(model, pack_sequences([item]))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)


def run_row(name: str, items, warmup: int, threads: int, compiled: bool, precision: str):
    import torch

    torch.set_num_threads(threads)
    model, _, optimizer = build()
    runner = torch.compile(model, dynamic=True) if compiled else model
    started = time.perf_counter()
    for item in items[:warmup]:
        step(runner, optimizer, item, precision)
    warm = time.perf_counter() - started
    started, fed, first = time.perf_counter(), 0, None
    for item in items[warmup:]:
        loss = step(runner, optimizer, item, precision)
        first = loss if first is None else first
        fed += len(item.input_ids)
    seconds = time.perf_counter() - started
    row = {"row": name, "threads": threads, "compiled": compiled, "precision": precision,
           "warmup_s": round(warm, 1), "timed_s": round(seconds, 1), "tokens_fed": fed,
           "tokens_per_s": round(fed / seconds, 1), "first_timed_loss": round(first, 4)}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domain", default="sgd_banks")
    parser.add_argument("--dialogues", type=int, default=24, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps a row")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rows", nargs="+", default=["eager-2", "eager-1", "compiled-2"])
    args = parser.parse_args(argv)

    from dialogtune.data.encode.chat import encode_dialogues
    from dialogtune.data.formats import read_dialogues
    from dialogtune.precision import resolve_precision

    precision = resolve_precision(args.precision)
    _, tokenizer, _ = build()
    encoded, _ = encode_dialogues(tokenizer, read_dialogues(
        args.data_root / args.domain / "train.jsonl"), 2048)
    random.Random(0).shuffle(encoded)
    items = encoded[:args.warmup + args.dialogues]
    print(json.dumps(machine(2)), flush=True)
    rows = []
    for name in args.rows:
        kind, threads = name.split("-")
        rows.append(run_row(name, items, args.warmup, int(threads), kind == "compiled",
                            precision))
    eager = next((r for r in rows if r["row"] == "eager-2"), None)
    print("\n| row | threads | precision | warm-up s | tokens fed/s | vs eager-2 |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['tokens_per_s'] / eager['tokens_per_s']:.2f}x" if eager else "-"
        print(f"| {r['row']} | {r['threads']} | {r['precision']} | {r['warmup_s']} | "
              f"{r['tokens_per_s']} | {ratio} |")
    (HERE / "chat_compile_results.json").write_text(json.dumps(
        {"machine": machine(2), "domain": args.domain, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
