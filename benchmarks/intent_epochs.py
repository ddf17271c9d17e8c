"""Does the intent default's epoch count hold beyond BANKING77? (issue 14, item 4)

    flock /tmp/dialogtune-bench.lock python benchmarks/intent_epochs.py \\
        [--sets snips crosswoz_zh banking77] [--epochs 2 3] [--seeds 42]
        [--set train.min_steps=400] [--json out.json]

For each data set and epoch count, the user's command with only the epochs changed
(``dialogtune train --task intent --data TRAIN --set train.epochs=E``, the test split
evaluated with ``dialogtune eval``), one after the other in this process's lock. SNIPS and
CrossWOZ are read as intent data (their slots are ignored; CrossWOZ's Chinese text makes
the default extend MiniLM's vocabulary). Prints test accuracy, macro-F1, train seconds and
the machine beside every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import machine

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"snips": ("snips/train.jsonl", "snips/test.jsonl"),
        "crosswoz_zh": ("crosswoz_zh/nlu_train.jsonl", "crosswoz_zh/nlu_test.jsonl"),
        "banking77": ("banking77/train.csv", "banking77/test.csv")}


def run(root: Path, name: str, epochs: int, seed: int, threads: int, work: Path,
        extra: list[str]) -> dict:
    """Train and evaluate one cell (``extra``: more ``--set`` settings); its figures."""
    train, test = (root / part for part in SETS[name])
    out = work / f"{name}_{epochs}_{seed}"
    cli = [sys.executable, "-m", "dialogtune.cli"]
    chosen = ["--set", f"train.epochs={epochs}"] if epochs else []  # 0: the default's
    subprocess.run([*cli, "train", "--task", "intent", "--data", str(train), "--output",
                    str(out), *chosen, "--set", f"train.seed={seed}",
                    "--set", f"train.num_threads={threads}", "--set",
                    "train.save_every_steps=0", *[a for s in extra for a in ("--set", s)]],
                   check=True, stdout=subprocess.DEVNULL)
    metrics_path = out / "test_metrics.json"
    subprocess.run([*cli, "eval", str(out), "--data", str(test), "--output",
                    str(metrics_path)], check=True, stdout=subprocess.DEVNULL)
    summary, metrics = (json.loads(p.read_text()) for p in (out / "run.json", metrics_path))
    return {"set": name, "epochs": epochs, "seed": seed, "extra": extra,
            "steps": summary["steps"],
            "best_epoch": summary["best_epoch"], "train_seconds": summary["train_seconds"],
            "precision": summary["precision"], "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--sets", nargs="+", default=["snips", "crosswoz_zh"], choices=SETS)
    parser.add_argument("--epochs", nargs="+", type=int, default=[2, 3],
                        help="0: the default (epochs by the data's size)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="another setting for every cell, e.g. train.min_steps=400")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    about = machine(args.threads)
    print(f"machine: {about}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="intent_epochs_") as work:
        for name in args.sets:
            for seed in args.seeds:
                for epochs in args.epochs:
                    row = run(args.data_root, name, epochs, seed, args.threads, Path(work),
                              args.extra)
                    rows.append(row)
                    print(f"{name} epochs={epochs} seed={seed}: accuracy {row['accuracy']:.4f}"
                          f", macro-F1 {row['macro_f1']:.4f}, {row['train_seconds']} s "
                          f"({row['steps']} steps, best epoch {row['best_epoch']}, "
                          f"{row['precision']}) on {about['cpu']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": about, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
