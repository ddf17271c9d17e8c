"""Does the previous assistant turn help NLU? ``--task nlu`` on SGD user turns, with and
without ``--set data.context=previous``, same seed, same split, one scorer.

Answers such as "In checking." carry a slot only given the question before them; this
measures whether reading that question as a second segment pays for its extra tokens.
Prints the CPU model and thread count beside the figures. Usage:

    flock /tmp/dialogtune-bench.lock python benchmarks/nlu_context_sgd.py \\
        --domains sgd_banks sgd_restaurants --json context.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import machine

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KEYS = ("accuracy", "slot_f1", "slot_precision", "slot_recall", "sentence_accuracy")



def run(data: Path, out: Path, threads: int, context: bool) -> dict:
    cli = [sys.executable, "-m", "dialogtune.cli"]
    extra = ["--set", "data.context=previous"] if context else []
    subprocess.run([*cli, "train", "--task", "nlu", "--format", "dialogue",
                    "--data", str(data / "train.jsonl"), "--output", str(out),
                    "--set", f"train.num_threads={threads}", *extra], check=True)
    metrics_path = out / "eval" / "metrics.json"
    subprocess.run([*cli, "eval", str(out), "--data", str(data / "test.jsonl"),
                    "--output", str(metrics_path)], check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads(metrics_path.read_text())
    summary = json.loads((out / "run.json").read_text())
    return {"train_seconds": summary["train_seconds"],
            "train_examples": summary["train_examples"], **{k: metrics[k] for k in KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domains", nargs="+", default=["sgd_banks", "sgd_restaurants"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict = {"machine": machine(args.threads)}
    print("machine:", json.dumps(results["machine"]), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-nlu-context-"))
    for domain in args.domains:
        results[domain] = {name: run(args.data_root / domain, work / domain / name,
                                     args.threads, name == "with_context")
                           for name in ("without_context", "with_context")}
        print(domain, json.dumps(results[domain]), flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
