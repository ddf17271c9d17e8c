"""Intent training on small data: how to use a few hundred examples, measured on BANKING77.

Samples ``k`` training utterances per intent (several ``k``, several seeds), trains with the
default command and with variants given as ``--set`` overrides, and scores each run on the
full BANKING77 test set (3,080 utterances), so the choice between holding out a validation
split (best-epoch selection, out-of-scope calibration) and training on every example rests
on a test set large enough to tell them apart. The variant ``setfit (peer)`` runs the
SetFit library's recipe on the same split instead (``benchmarks/setfit_peer.py``; needs
``pip install -e .[bench]``).

Usage: ``python benchmarks/intent_small_data.py [--k 10 25] [--seeds 1 2 3]
[--variants NAME ...] [--set key=value ...] [--json out.json]`` (take the benchmark lock:
``flock /tmp/dialogtune-bench.lock``)
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intent_banking77 import DEFAULT_DATA, run_dialogtune  # noqa: E402
from machine import machine  # noqa: E402

COSINE = ["model.head=cosine", "model.head_init=prototypes"]
VARIANTS = {
    # the default holds out 10 % from 8 utterances per intent up and trains on all below
    "default": [],
    "hold-out 10%": ["data.val_fraction=0.1"],
    "all data, last epoch": ["data.val_fraction=0"],
    "linear head from prototypes": ["model.head_init=prototypes"],
    "cosine head from prototypes": COSINE,
    "contrastive 0.5": ["train.contrastive_weight=0.5"],
    "cosine prototypes + contrastive 0.5": [*COSINE, "train.contrastive_weight=0.5"],
    # batches of 8 intents x 4 utterances: the contrastive term gets positives to pull
    "runs of 4 per intent": ["train.examples_per_label=4"],
    "contrastive 0.1, runs of 4": ["train.contrastive_weight=0.1", "train.examples_per_label=4"],
    "contrastive 0.5, runs of 4": ["train.contrastive_weight=0.5", "train.examples_per_label=4"],
}
# the few-shot peer (benchmarks/setfit_peer.py: the setfit library's recipe on MiniLM)
SETFIT_PEER = "setfit (peer)"
FIRST_STUDY = ["hold-out 10%", "all data, last epoch"]


def rows_by_intent(source: Path) -> dict[str, list[dict]]:
    """BANKING77's training rows grouped by intent, in file order."""
    with (source / "train.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["category"], []).append(row)
    return grouped


def sample_rows(grouped: dict[str, list[dict]], per_intent: int | None,
                rng: random.Random) -> list[dict]:
    """``per_intent`` random rows of each intent (all of them when None), intents sorted."""
    return [row for intent in sorted(grouped) for row in (
        rng.sample(grouped[intent], min(per_intent, len(grouped[intent])))
        if per_intent else grouped[intent])]


def write_train_and_test(source: Path, target: Path, train_rows: list[dict]) -> None:
    """``train_rows`` as train.csv, and the full test set beside them."""
    target.mkdir(parents=True, exist_ok=True)
    with (target / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(train_rows)
    (target / "test.csv").write_bytes((source / "test.csv").read_bytes())


def write_subset(source: Path, target: Path, per_intent: int, seed: int) -> int:
    """``per_intent`` random training rows of each intent, and the full test set beside them."""
    picked = sample_rows(rows_by_intent(source), per_intent, random.Random(seed))
    write_train_and_test(source, target, picked)
    return len(picked)


def run_setfit_peer(subset: Path, seed: int) -> dict:
    """SetFit's default recipe on the same split, in its own process (its memory apart)."""
    script = Path(__file__).resolve().parent / "setfit_peer.py"
    done = subprocess.run([sys.executable, str(script), str(subset), "--seed", str(seed)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(results: list[dict]) -> list[dict]:
    """Mean and spread of test accuracy / macro-F1 per (k, variant)."""
    groups: dict[tuple, list[dict]] = {}
    for row in results:
        groups.setdefault((row["k"], row["variant"]), []).append(row)
    table = []
    for (k, variant), rows in groups.items():
        accuracy = [r["accuracy"] for r in rows]
        table.append({"k": k, "variant": variant, "runs": len(rows),
                      "accuracy_mean": statistics.mean(accuracy),
                      "accuracy_sd": statistics.stdev(accuracy) if len(rows) > 1 else 0.0,
                      "macro_f1_mean": statistics.mean(r["macro_f1"] for r in rows),
                      "train_seconds_mean": statistics.mean(r["train_seconds"] for r in rows)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=FIRST_STUDY,
                        choices=[*VARIANTS, SETFIT_PEER], metavar="VARIANT",
                        help=f"of: {'; '.join([*VARIANTS, SETFIT_PEER])}")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides",
                        help="extra key=value settings for every run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results, host = [], machine(None)
    print("machine:", json.dumps(host), flush=True)
    with tempfile.TemporaryDirectory(prefix="intent-small-") as tmp:
        for k in args.k:
            for seed in args.seeds:
                subset = Path(tmp) / f"k{k}-s{seed}"
                examples = write_subset(args.data, subset, k, seed)
                for variant in args.variants:
                    out = subset / f"run-{len(results)}"
                    extra = [f"train.seed={seed}", *VARIANTS.get(variant, []), *args.overrides]
                    row = (run_setfit_peer(subset, seed) if variant == SETFIT_PEER else
                           run_dialogtune(subset, out, [a for o in extra for a in ("--set", o)]))
                    row.update(k=k, seed=seed, variant=variant, train_examples=examples)
                    results.append(row)
                    print(json.dumps(row), flush=True)
    table = summarize(results)
    for line in table:
        print(f"k={line['k']:>3}  {line['variant']:<24} accuracy {line['accuracy_mean']:.4f}"
              f" ± {line['accuracy_sd']:.4f}  macro-F1 {line['macro_f1_mean']:.4f}"
              f"  train {line['train_seconds_mean']:.0f} s  ({line['runs']} runs)")
    if args.json:
        args.json.write_text(json.dumps({"machine": host, "runs": results, "summary": table},
                                         indent=2))


if __name__ == "__main__":
    main()
