"""NLU settings on SGD user turns: ``--task nlu --format dialogue`` with and without one
setting, same seed, same split, one scorer.

``--compare context`` (default): does the previous assistant turn help? Answers such as
"In checking." carry a slot only given the question before them; this measures whether
reading that question as a second segment pays for its extra tokens.
``--compare slot_decoder``: the softmax slot head against the CRF (``model.slot_decoder``),
measured on SNIPS first; this checks the choice on data it was not chosen on.
``--against KEY=VALUE ...``: the defaults against any other settings (e.g. a learning rate).
Prints the CPU model and thread count beside the figures. Usage:

    flock /tmp/dialogtune-bench.lock python benchmarks/nlu_context_sgd.py \\
        --domains sgd_banks sgd_restaurants [--compare slot_decoder] --json out.json
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
# --compare: the two variants, each as the settings it adds to the default command
COMPARISONS = {
    "context": {"without_context": [], "with_context": ["data.context=previous"]},
    "slot_decoder": {"softmax": [], "crf": ["model.slot_decoder=crf"]},
}



def run(data: Path, out: Path, threads: int, settings: list[str]) -> dict:
    cli = [sys.executable, "-m", "dialogtune.cli"]
    extra = [arg for setting in settings for arg in ("--set", setting)]
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
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="context")
    parser.add_argument("--against", nargs="+", metavar="KEY=VALUE",
                        help="instead of --compare: the defaults against these settings")
    parser.add_argument("--seed", type=int, help="train.seed for every run (default: train's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict = {"machine": machine(args.threads), "compare": args.compare,
                     "seed": args.seed}
    seed = [f"train.seed={args.seed}"] if args.seed is not None else []
    variants = ({"default": [], " ".join(args.against): args.against} if args.against
                else COMPARISONS[args.compare])
    results["variants"] = variants
    print("machine:", json.dumps(results["machine"]), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-nlu-context-"))
    for domain in args.domains:
        results[domain] = {name: run(args.data_root / domain, work / domain / name,
                                     args.threads, seed + settings)
                           for name, settings in variants.items()}
        print(domain, json.dumps(results[domain]), flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
