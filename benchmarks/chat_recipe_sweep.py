"""How the chat defaults were chosen: held-out perplexity after one epoch of LoRA per recipe.

    python benchmarks/chat_recipe_sweep.py [--domain sgd_banks] [--threads 1]
        [--recipes 1e-3:1 2e-3:1 5e-4:1 2e-3:4]

Each recipe is ``lr:dialogues_per_step`` (several dialogues per step are packed into one
row). Everything else is the chat default: LoRA r=16 / alpha 32 on all linear layers, no
dropout, one-cycle schedule with 10 % warm-up, one epoch, assistant-only loss. Prints
held-out assistant perplexity (dialogtune.evaluate.chat), steps and training tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_recipe(train: Path, test: Path, lr: float, per_step: int, threads: int) -> dict:
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.config import load_config
    from dialogtune.data.formats import read_dialogues
    from dialogtune.evaluate.chat import perplexity_metrics
    from dialogtune.pipeline import train_run

    run = Path(tempfile.mkdtemp(prefix="chat_sweep_")) / "run"
    summary = train_run(load_config(None, [
        f"train.lr={lr}", f"train.batch_size={per_step}", f"train.num_threads={threads}",
        "train.save_every_steps=0"], task="chat", output=str(run),
        **{"data.train": str(train), "model.name": "smollm2", "strategy.name": "lora"}))
    predictor = ChatPredictor.from_run(run)
    scores = perplexity_metrics(predictor.model, predictor.tokenizer, read_dialogues(test), 1024)
    return {"lr": lr, "dialogues_per_step": per_step, "steps": summary["steps"],
            "train_seconds": summary["train_seconds"],
            "tokens_per_second": summary["tokens_per_second"],
            "perplexity": scores["perplexity"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domain", default="sgd_banks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recipes", nargs="+", default=["1e-3:1", "2e-3:1", "5e-4:1", "2e-3:4"])
    args = parser.parse_args(argv)
    import torch

    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.data.formats import read_dialogues
    from dialogtune.evaluate.chat import perplexity_metrics

    torch.set_num_threads(args.threads)
    train, test = (args.data_root / args.domain / f"{s}.jsonl" for s in ("train", "test"))
    base = ChatPredictor.from_model("smollm2")
    base_ppl = perplexity_metrics(base.model, base.tokenizer, read_dialogues(test),
                                  1024)["perplexity"]
    print(f"{args.domain}: base perplexity {base_ppl:.2f}", flush=True)
    rows = []
    for recipe in args.recipes:
        lr, per_step = recipe.split(":")
        rows.append(run_recipe(train, test, float(lr), int(per_step), args.threads))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| lr | dialogues/step | steps | train s | tokens/s | perplexity | vs base "
          f"({base_ppl:.2f}) |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lr']:g} | {r['dialogues_per_step']} | {r['steps']} | "
              f"{r['train_seconds']:.0f} | {r['tokens_per_second']:.0f} | "
              f"{r['perplexity']:.2f} | {r['perplexity'] / base_ppl:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
