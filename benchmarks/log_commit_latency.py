"""Cost of ``synchronous=FULL`` for the server's conversation log: commit latency per
logged exchange with FULL (the default: an acknowledged row survives a power loss) and with
NORMAL (survives a crash of the process only), on this machine's disk.

    python benchmarks/log_commit_latency.py [--commits 300] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from machine import cpu_model

from dialogtune.data.conversation_log import ConversationStore, Exchange


def latencies(folder: Path, mode: str, commits: int) -> list[float]:
    store = ConversationStore(folder / f"{mode.lower()}.db")
    store._db.execute(f"PRAGMA synchronous={mode}")  # the benchmark's only switch
    times = []
    for i in range(commits):
        row = Exchange(f"c{i}", "chat", [{"role": "user", "content": "hello"}], "hi there")
        started = time.perf_counter()
        store.log(row)  # one transaction, committed before log() returns
        times.append((time.perf_counter() - started) * 1000)
    store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-log-"))
    results = {"cpu": cpu_model(), "folder": str(folder), "commits": args.commits}
    for mode in ("NORMAL", "FULL"):
        ms = sorted(latencies(folder, mode, args.commits))
        results[mode] = {"median_ms": round(statistics.median(ms), 3),
                         "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 3)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
