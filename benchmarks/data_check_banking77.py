"""Time ``dialogtune data check`` on BANKING77 train + test (13k utterances) end to end.

    python benchmarks/data_check_banking77.py [--data-root ../shared/data] [--repeat 3]

Runs the real command in a fresh process (interpreter start, imports, tokenizer load,
every check, JSON report) and prints wall and CPU seconds per run and the findings
counts. Target: ≤ 10 s wall on 2 cores. CPU seconds are printed too because on a shared
machine wall time also measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def run_once(train: Path, test: Path, report: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``dialogtune data check`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dialogtune.cli", "data", "check", str(train),
                    "--test", str(test), "--output", str(report)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def in_process(train: Path, test: Path) -> tuple[float, float]:
    """(CPU, wall) seconds of ``check_files`` alone, after a warm-up call: the checks
    without interpreter start, imports and tokenizer load."""
    from dialogtune.data.quality.check import check_files

    check_files(train, test)
    cpu, wall = time.process_time(), time.perf_counter()
    check_files(train, test)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    train = args.data_root / "banking77" / "train.csv"
    test = args.data_root / "banking77" / "test.csv"
    if not train.exists():
        sys.exit(f"BANKING77 not found under {args.data_root} (use --data-root)")
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "report.json"
        runs = [run_once(train, test, report_path) for _ in range(args.repeat)]
        report = json.loads(report_path.read_text(encoding="utf-8"))
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    print(f"command: dialogtune data check {train} --test {test} --output report.json")
    print(f"records: train {report['records']}, test {report['test_records']}; "
          f"model {report['model']}; cores {os.cpu_count()}")
    print(f"wall seconds: {', '.join(f'{w:.2f}' for w in walls)} "
          f"(median {statistics.median(walls):.2f}, best {min(walls):.2f})")
    print(f"cpu seconds:  {', '.join(f'{c:.2f}' for c in cpus)} "
          f"(median {statistics.median(cpus):.2f})")
    cpu, wall = in_process(train, test)
    print(f"check_files alone (warm, in process): cpu {cpu:.2f} s, wall {wall:.2f} s")
    groups = len(report["duplicates"]["exact"])
    print(f"exact duplicate groups: {groups}")
    print("findings: " + json.dumps(report["counts"]))
    tokens = report["lengths"]["tokens"] or {}
    print(f"tokens: p50 {tokens.get('p50')}, p95 {tokens.get('p95')}, max {tokens.get('max')}; "
          f"imbalance {report['imbalance']['ratio']}")


if __name__ == "__main__":
    main()
