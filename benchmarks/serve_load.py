"""Load test of ``dialogtune serve`` on loopback: latency, throughput, errors, lost rows.

run: flock /tmp/dialogtune-bench.lock .venv/bin/python benchmarks/serve_load.py --duration 60 --clients 32

It trains a quick intent run on examples/intents_train.csv with the embedded minilm (or
uses --intent-run), starts the server as a subprocess on a free port with smollm2 for
chat and a log database, then measures:
  1. /v1/intents, one client, one utterance per request: p50/p95 latency (target p50 <= 15 ms)
  2. streaming time to first token for a short prompt (target <= 300 ms)
  3. --clients concurrent clients for --duration seconds, a --chat-fraction of them on
     /v1/chat/completions and the rest on /v1/intents: p50/p95, requests/s, errors (target 0)
  4. rows in the log database vs successful requests after a SIGTERM (target: equal)

With --compare-batching it instead measures chat generation alone, one-at-a-time worker
vs batched, --clients (default 8) chat clients each (see serve_batching.py).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHORT_PROMPT = [{"role": "user", "content": "Hi!"}]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="load phase seconds")
    parser.add_argument("--clients", type=int, help="default 32; 8 with --compare-batching")
    parser.add_argument("--chat-fraction", type=float, default=0.25)
    parser.add_argument("--chat", default="smollm2", help="chat model for the server")
    parser.add_argument("--intent-run", help="an existing intent run (default: train one)")
    parser.add_argument("--train-epochs", type=float, default=3)
    parser.add_argument("--max-tokens", type=int, default=16, help="per chat request")
    parser.add_argument("--single-seconds", type=float, default=15.0)
    parser.add_argument("--ttft-runs", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--compare-batching", action="store_true",
                        help="chat only: the one-at-a-time worker vs batched generation")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "auto"],
                        choices=["fp32", "bf16", "auto"],
                        help="--compare-batching: the servers' --precision, both modes each")
    parser.add_argument("--rounds", type=int, default=2,
                        help="--compare-batching: turns of --duration seconds a mode")
    args = parser.parse_args(argv)
    args.clients = args.clients or (8 if args.compare_batching else 32)
    return args


def train_intent_run(folder: Path, epochs: float) -> Path:
    """A minilm intent run on the example domain (about a minute on 2 cores)."""
    from dialogtune import load_config, train_run

    output = folder / "intent_run"
    cfg = load_config(None, [f"train.epochs={epochs}"], task="intent",
                      **{"model.name": "minilm", "output": str(output),
                         "data.train": str(ROOT / "examples" / "intents_train.csv")})
    started = time.perf_counter()
    train_run(cfg)
    print(f"trained {output} in {time.perf_counter() - started:.0f} s", flush=True)
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(intent_run: Path | None, chat: str, db: Path | None, port: int,
                 extra: list[str] = ()) -> subprocess.Popen:
    command = [sys.executable, "-m", "dialogtune.cli", "serve", "--chat", chat, "--port",
               str(port), *(["--intent", str(intent_run)] if intent_run else []),
               *(["--log-db", str(db)] if db else []), *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not start in 300 s")


class Stats:
    """Latencies (seconds) of successful requests and a count of failed ones."""

    def __init__(self):
        self.latencies: list[float] = []
        self.errors = 0
        self.seconds = 0.0
        self.warmup_ok = 0  # successful but unmeasured requests (still logged by the server)

    def summary(self) -> dict:
        values = sorted(self.latencies)
        pick = (lambda q: round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)
                if values else None)
        rate = len(values) / self.seconds if self.seconds else None
        return {"ok": len(values), "errors": self.errors, "p50_ms": pick(0.5),
                "p95_ms": pick(0.95), "rps": round(rate, 2) if rate else None}


async def timed(stats: Stats, request) -> None:
    started = time.perf_counter()
    try:
        response = await request()
        response.raise_for_status()
        stats.latencies.append(time.perf_counter() - started)
    except (httpx.HTTPError, ValueError) as exc:
        stats.errors += 1
        print(f"  error: {exc!r}"[:300], flush=True)


def intent_texts() -> list[str]:
    with (ROOT / "examples" / "intents_test.csv").open(newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


async def single_intents(http: httpx.AsyncClient, seconds: float) -> Stats:
    """One client, one utterance per request, back to back."""
    stats, warm, texts = Stats(), Stats(), intent_texts()
    for text in texts[:20]:  # warm-up, not measured
        await timed(warm, lambda: http.post("/v1/intents", json={"text": text}))
    started, i = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        await timed(stats, lambda: http.post("/v1/intents", json={"text": texts[i % len(texts)]}))
        i += 1
    stats.seconds = time.perf_counter() - started
    stats.warmup_ok, stats.errors = len(warm.latencies), stats.errors + warm.errors
    return stats


async def first_token(http: httpx.AsyncClient, max_tokens: int) -> float:
    """Seconds until the first non-empty content chunk of a streamed reply."""
    started, first = time.perf_counter(), None
    body = {"messages": SHORT_PROMPT, "max_tokens": max_tokens, "temperature": 0,
            "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


async def ttft(http: httpx.AsyncClient, runs: int, max_tokens: int) -> Stats:
    stats = Stats()
    for run in range(runs + 1):  # the first is a warm-up
        try:
            seconds = await first_token(http, max_tokens)
        except httpx.HTTPError:
            stats.errors += 1
            continue
        if run:
            stats.latencies.append(seconds)
        else:
            stats.warmup_ok = 1
    return stats


async def client_loop(http, kind: str, deadline: float, stats: Stats, index: int,
                      max_tokens: int, texts: list[str]) -> None:
    i = index
    while time.perf_counter() < deadline:
        if kind == "chat":
            body = {"messages": [{"role": "user", "content": texts[i % len(texts)]}],
                    "max_tokens": max_tokens, "temperature": 0}
            await timed(stats, lambda: http.post("/v1/chat/completions", json=body))
        else:
            await timed(stats, lambda: http.post("/v1/intents",
                                                 json={"text": texts[i % len(texts)]}))
        i += 1


async def load(http: httpx.AsyncClient, clients: int, chat_share: float, duration: float,
               max_tokens: int) -> dict[str, Stats]:
    chats = max(1, round(clients * chat_share))
    stats = {"chat": Stats(), "intents": Stats()}
    texts, started = intent_texts(), time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(client_loop(http, "chat" if c < chats else "intents", deadline,
                                       stats["chat" if c < chats else "intents"], c, max_tokens,
                                       texts) for c in range(clients)))
    for item in stats.values():
        item.seconds = time.perf_counter() - started
    return stats


def count_rows(db: Path) -> int:
    connection = sqlite3.connect(str(db))
    try:
        return connection.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
    finally:
        connection.close()


async def measure(url: str, args: argparse.Namespace) -> dict:
    limits = httpx.Limits(max_connections=args.clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        single = await single_intents(http, args.single_seconds)
        first = await ttft(http, args.ttft_runs, args.max_tokens)
        loaded = await load(http, args.clients, args.chat_fraction, args.duration,
                            args.max_tokens)
    phases = {"intents_single": single, "stream_first_token": first,
              "load_chat": loaded["chat"], "load_intents": loaded["intents"]}
    sent_ok = sum(len(s.latencies) + s.warmup_ok for s in phases.values())
    return {"phases": {k: v.summary() for k, v in phases.items()}, "successful_requests": sent_ok}


def report(results: dict, args: argparse.Namespace) -> None:
    print(f"\nserve load test: {args.clients} clients for {args.duration:.0f} s "
          f"({args.chat_fraction:.0%} chat, max_tokens {args.max_tokens}), chat={args.chat}")
    print(f"{'phase':22} {'ok':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8}")
    for name, row in results["phases"].items():
        print(f"{name:22} {row['ok']:>6} {row['errors']:>6} {row['p50_ms']!s:>8} "
              f"{row['p95_ms']!s:>8} {row['rps']!s:>8}")
    print(f"log rows {results['log_rows']} vs successful requests "
          f"{results['successful_requests']} (lost: "
          f"{results['successful_requests'] - results['log_rows']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.compare_batching:
        from serve_batching import HERE, compare, report as report_batching

        report_batching(compare(args), Path(args.json or HERE / "serve_batching_results.json"))
        return 0
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        folder = Path(tmp)
        run = Path(args.intent_run) if args.intent_run else train_intent_run(folder,
                                                                               args.train_epochs)
        port, db = free_port(), folder / "log.db"
        server = start_server(run, args.chat, db, port)
        try:
            results = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(300)
        results["log_rows"] = count_rows(db)
        report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
