"""Does ``recommend``'s time estimate hold? Runs ``dialogtune recommend`` and then the
``train`` command it recommends, each as its own process, and compares the estimate with the
train command's wall time (start to exit) and the loop's own clock.

Data: the example intents (``examples/intents_train.csv``) and, when BANKING77 is found
(``../shared/data/banking77`` beside the repository or under /work/shared), a sample of
``--per-intent`` utterances per intent; ``--budget`` adds a BANKING77 case with that budget.

Usage: ``python benchmarks/recommend_check.py [--per-intent 25] [--budget 40s] [--json out]``
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intent_small_data import rows_by_intent, sample_rows, write_train_and_test  # noqa: E402
from machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BANKING77 = [REPO.parent / "shared" / "data" / "banking77",
             Path("/work/shared/data/banking77")]
CLI = [sys.executable, "-m", "dialogtune.cli"]


def check(name: str, data: Path, folder: Path, extra: list[str]) -> dict:
    """recommend, then its train command; estimated against measured seconds."""
    advice = folder / f"{name}.json"
    subprocess.run([*CLI, "recommend", "--task", "intent", "--data", str(data),
                    "--output", str(advice), *extra], check=True, stdout=subprocess.DEVNULL)
    result = json.loads(advice.read_text())
    words = shlex.split(result["train"])
    run = folder / f"{name}_run"
    words[words.index("--output") + 1] = str(run)
    started = time.perf_counter()
    subprocess.run([*CLI, *words[1:]], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads((run / "run.json").read_text())
    candidate = next(c for c in result["measured"]["candidates"]
                     if c["strategy"] == result["strategy"])
    loop_estimate = result["steps"] * candidate["seconds_per_step"]
    # the same formula for the steps the run made (early stopping may end it sooner):
    # the speed model on its own, apart from the run's length
    per, sps, end = (candidate["steps_per_epoch"], candidate["seconds_per_step"],
                     candidate["epoch_end_seconds"])
    made = summary["steps"]
    for_steps_made = result["estimated_train_seconds"] - (result["steps"] - made) * sps - (
        math.ceil(result["steps"] / per) - math.ceil(made / per)) * end
    return {"case": name, "strategy": result["strategy"], "epochs": result["epochs"],
            "steps": result["steps"], "steps_run": summary["steps"],
            "estimated_train_seconds": result["estimated_train_seconds"],
            "train_command_seconds": round(wall, 1),
            "ratio": round(result["estimated_train_seconds"] / wall, 3),
            "estimated_earliest_seconds": result.get("estimated_earliest_seconds"),
            "estimated_for_steps_run": round(for_steps_made, 1),
            "ratio_for_steps_run": round(for_steps_made / wall, 3),
            "estimated_loop_seconds": round(loop_estimate, 1),
            "loop_seconds": summary["train_seconds"],
            "loop_ratio": round(loop_estimate / summary["train_seconds"], 3),
            "threads": result["measured"]["threads"], "formula": result["formula"],
            "reason": result["reason"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, default=25)
    parser.add_argument("--budget", default=None, help="also a BANKING77 case with it")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="recommend-check-") as tmp:
        folder = Path(tmp)
        cases = [("examples", REPO / "examples" / "intents_train.csv", [])]
        source = next((p for p in BANKING77 if (p / "train.csv").exists()), None)
        if source is not None:
            sample = folder / "banking77"
            picked = sample_rows(rows_by_intent(source), args.per_intent, random.Random(1))
            write_train_and_test(source, sample, picked)
            name = f"banking77_{args.per_intent}_per_intent"
            cases.append((name, sample / "train.csv", []))
            if args.budget:
                cases.append((f"{name}_budget_{args.budget}", sample / "train.csv",
                              ["--budget", args.budget]))
        for name, data, extra in cases:
            rows.append(check(name, data, folder, extra))
            print(json.dumps(rows[-1]), flush=True)
    report = {"cpu": cpu_model(), "rows": rows}
    print(f"CPU: {report['cpu']}")
    for row in rows:
        print(f"{row['case']}: {row['strategy']}, {row['steps']} steps; estimated "
              f"{row['estimated_train_seconds']} s, train command {row['train_command_seconds']}"
              f" s (ratio {row['ratio']}; for the {row['steps_run']} steps run "
              f"{row['estimated_for_steps_run']} s, ratio {row['ratio_for_steps_run']}); loop {row['estimated_loop_seconds']} s vs "
              f"{row['loop_seconds']} s (ratio {row['loop_ratio']}); {row['threads']} threads")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
