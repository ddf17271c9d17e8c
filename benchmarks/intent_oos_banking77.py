"""Out-of-scope detection on BANKING77 with a quarter of the intents held out as unknown.

A seeded 25 % of the 77 intents is removed from training; their test utterances are the
out-of-scope turns a deployed bot meets (the BANKING77-OOS protocol). The default command
trains on the rest (optionally ``--k`` utterances per intent), ``dialogtune eval`` scores the
full test set, and the run's calibrated threshold is compared with other calibration rules
computed from the same validation split, and with the oracle F1-best threshold.

Usage: ``python benchmarks/intent_oos_banking77.py [--k 10] [--seed 1] [--set key=value ...]
[--keep DIR] [--json out.json]`` (take the benchmark lock: ``flock /tmp/dialogtune-bench.lock``)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intent_banking77 import DEFAULT_DATA, run_dialogtune  # noqa: E402
from intent_small_data import rows_by_intent, sample_rows, write_train_and_test  # noqa: E402
from machine import machine  # noqa: E402

RULES = {  # name -> (rule, share): keep a share of the correct validation predictions
    # above the threshold, or reject a share of all in-scope validation turns
    "keep 95% of correct": ("correct", 0.95),
    "keep 99% of correct": ("correct", 0.99),
    "keep 90% of correct": ("correct", 0.90),
    "reject 5% of validation turns (default)": ("rejection", 0.05),
}


def write_split(source: Path, target: Path, oos_fraction: float, k: int | None,
                seed: int) -> list[str]:
    """In-scope training rows (``k`` per intent at most) and the whole test set."""
    grouped = rows_by_intent(source)
    rng = random.Random(seed)  # one stream: the unknown intents, then the sample
    unknown = set(rng.sample(sorted(grouped), round(oos_fraction * len(grouped))))
    known = {intent: rows for intent, rows in grouped.items() if intent not in unknown}
    write_train_and_test(source, target, sample_rows(known, k, rng))
    return sorted(unknown)


def compare_rules(run: Path, test_csv: Path) -> list[dict]:
    """Each calibration rule's threshold, from the run's own validation split, on the test set."""
    from dialogtune.config import read_run_config
    from dialogtune.data.formats import read_intents
    from dialogtune.evaluate.intent import (calibrate_oos_threshold, out_of_scope_report,
                                            rejection_threshold)
    from dialogtune.inference.intent import Predictor
    from dialogtune.tasks.intent import load_intent_data

    predictor = Predictor.from_run(run)
    validation = load_intent_data(read_run_config(run)).validation  # the same seeded split
    val_probs = predictor.probabilities([r.text for r in validation])
    test = read_intents(str(test_csv), "text", "category")
    test_probs = predictor.probabilities([r.text for r in test])
    rows = []
    for name, (rule, share) in RULES.items():
        calibrate = calibrate_oos_threshold if rule == "correct" else rejection_threshold
        threshold = calibrate(val_probs, validation, predictor.labels, share)
        rows.append({"rule": name, **out_of_scope_report(test_probs, test, predictor.labels,
                                                         threshold)})
    oracle = out_of_scope_report(test_probs, test, predictor.labels, None)
    rows.append({"rule": "oracle: F1-best on the test set", **out_of_scope_report(
        test_probs, test, predictor.labels, oracle["best_f1_threshold"])})
    return rows


def compare_scores(run: Path, test_csv: Path, rejection: float = 0.05) -> list[dict]:
    """Every score of ``intent_oos_scores.py`` under the same rule: the cut that rejects
    ``rejection`` of the in-scope validation turns, applied to the test set. Also each
    score's AUROC and its recall at exactly that test-set rejection (an oracle cut)."""
    from intent_oos_scores import embeddings_and_logits, in_scope_scores
    from sklearn.metrics import roc_auc_score

    from dialogtune.config import read_run_config
    from dialogtune.data.formats import read_intents
    from dialogtune.evaluate.metrics import recall_at_rejection
    from dialogtune.inference.intent import Predictor
    from dialogtune.tasks.intent import load_intent_data

    predictor = Predictor.from_run(run)
    split = load_intent_data(read_run_config(run))
    test = read_intents(str(test_csv), "text", "category")
    train_x, _ = embeddings_and_logits(predictor, [r.text for r in split.train])
    train_y = np.array([predictor.labels.index[r.label] for r in split.train])
    val_scores = in_scope_scores(train_x, train_y, *embeddings_and_logits(
        predictor, [r.text for r in split.validation]))
    test_scores = in_scope_scores(train_x, train_y, *embeddings_and_logits(
        predictor, [r.text for r in test]))
    is_oos = np.array([r.label not in predictor.labels.index for r in test])
    rows = []
    for name, score in test_scores.items():
        cut = np.quantile(val_scores[name], rejection, method="inverted_cdf")
        rows.append({"score": name, "auroc": float(roc_auc_score(is_oos, -score)),
                     "recall_at_5pct_test_rejection": recall_at_rejection(score, is_oos, 0.05),
                     "rule_in_scope_rejected": float((score[~is_oos] < cut).mean()),
                     "rule_recall": float((score[is_oos] < cut).mean())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=None, help="training utterances per intent")
    parser.add_argument("--oos-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], dest="overrides",
                        help="extra key=value training settings")
    parser.add_argument("--keep", type=Path, help="keep the split and the run in this folder "
                        "(for benchmarks/intent_oos_scores.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print("machine:", json.dumps(machine(None)), flush=True)
    with tempfile.TemporaryDirectory(prefix="intent-oos-") as tmp:
        data = args.keep or Path(tmp)
        unknown = write_split(args.data, data, args.oos_fraction, args.k, args.seed)
        run = data / "run"
        settings = [f"train.seed={args.seed}", *args.overrides]
        trained = run_dialogtune(data, run, [a for o in settings for a in ("--set", o)])
        metrics = json.loads((run / "eval" / "metrics.json").read_text())
        rules = compare_rules(run, data / "test.csv")
        scores = compare_scores(run, data / "test.csv")
    result = {"machine": machine(None), "k": args.k, "seed": args.seed,
              "settings": args.overrides, "unknown_intents": unknown,
              "train_seconds": trained["train_seconds"],
              "in_scope_accuracy_no_rejection": _in_scope_accuracy(metrics),
              "eval_out_of_scope": metrics["out_of_scope"], "rules": rules,
              "scores": scores}
    print(f"{len(unknown)} unknown intents; trained in {trained['train_seconds']:.0f} s; "
          f"AUROC {metrics['out_of_scope']['auroc']:.4f}; in-scope accuracy without "
          f"rejection {result['in_scope_accuracy_no_rejection']:.4f}; out-of-scope recall at 5 % "
          f"in-scope rejection {metrics['out_of_scope']['recall_at_5pct_in_scope_rejection']:.4f}")
    for row in rules:
        print(f"{row['rule']:<34} threshold {row['threshold']:.3f}  in-scope acc "
              f"{row['in_scope_accuracy']:.4f} (rejected {row['in_scope_rejected']:.3f})  "
              f"oos recall {row['recall']:.4f} precision {row['precision']:.4f} "
              f"F1 {row['f1']:.4f}")
    print("score (reject 5 % of validation)  AUROC  recall@5%test  test rejected  recall")
    for row in scores:
        print(f"{row['score']:<34} {row['auroc']:.4f} {row['recall_at_5pct_test_rejection']:.4f}"
              f"        {row['rule_in_scope_rejected']:.3f}        {row['rule_recall']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _in_scope_accuracy(metrics: dict) -> float:
    """Accuracy over in-scope test utterances only (every unknown one is an error)."""
    oos = metrics["out_of_scope"]
    return metrics["accuracy"] * metrics["support"] / oos["in_scope_examples"]


if __name__ == "__main__":
    main()
