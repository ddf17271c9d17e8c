"""Batched vs one-at-a-time chat generation in ``dialogtune serve``, in the same run.

run: flock /tmp/dialogtune-bench.lock .venv/bin/python benchmarks/serve_load.py \
         --compare-batching [--clients 8] [--duration 60] [--max-tokens 16] [--chat smollm2]

Starts two servers (chat only, no log) on the same model: ``--generation-batch 1`` (the
one-at-a-time worker: each reply a whole ``generate``) and ``--generation-batch CLIENTS``
(replies decoded together, one forward pass a step). They are measured in turns,
``--rounds`` times (on a shared machine other jobs come and go; turns weigh them on both
alike), each turn ``--clients`` chat clients sending requests back to back for
``--duration`` seconds, after one warm-up request per server; prompts are the utterances of ``examples/intents_test.csv``, greedy,
``--max-tokens`` each. Per mode: aggregate generated tokens/s (``usage.completion_tokens``
of the successful replies over the phase), p50/p95 latency, errors; and, for the prompts
both modes answered, how many replies differ (greedy: none should).

Targets (issue 14): batched ≥ 3× the one-at-a-time tokens/s, batched chat p50 ≤ 3 s,
0 errors. Written to ``--json`` (default ``serve_batching_results.json`` beside this file).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx

from machine import machine
from dialogtune.resources import usable_cores

HERE = Path(__file__).resolve().parent
TARGETS = {"speedup": 3.0, "p50_s": 3.0, "errors": 0}


class ChatStats:
    """Per mode: latencies (s) and generated tokens of successful replies, errors, and
    the reply each prompt got."""

    def __init__(self):
        self.latencies: list[float] = []
        self.tokens = 0
        self.errors = 0
        self.seconds = 0.0
        self.replies: dict[str, str] = {}

    def summary(self) -> dict:
        values = sorted(self.latencies)
        pick = (lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 3)
                if values else None)
        return {"ok": len(values), "errors": self.errors, "generated_tokens": self.tokens,
                "seconds": round(self.seconds, 1),
                "tokens_per_s": round(self.tokens / self.seconds, 2) if self.seconds else None,
                "p50_s": pick(0.5), "p95_s": pick(0.95)}


async def chat_once(http: httpx.AsyncClient, text: str, max_tokens: int,
                    stats: ChatStats | None) -> None:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0}
    started = time.perf_counter()
    try:
        response = await http.post("/v1/chat/completions", json=body)
        response.raise_for_status()
        reply = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        if stats is not None:
            stats.errors += 1
        print(f"  error: {exc!r}"[:300], flush=True)
        return
    if stats is not None:
        stats.latencies.append(time.perf_counter() - started)
        stats.tokens += reply["usage"]["completion_tokens"]
        stats.replies[text] = reply["choices"][0]["message"]["content"]


async def drive(url: str, texts: list[str], clients: int, duration: float,
                max_tokens: int, stats: ChatStats, warm_up: bool) -> None:
    """``clients`` clients, each asking back to back until ``duration`` has passed."""
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        if warm_up:
            await chat_once(http, texts[0], max_tokens, None)  # not measured
        started = time.perf_counter()
        deadline = started + duration

        async def client(index: int) -> None:
            i = index
            while time.perf_counter() < deadline:
                await chat_once(http, texts[i % len(texts)], max_tokens, stats)
                i += clients

        await asyncio.gather(*(client(c) for c in range(clients)))
        stats.seconds += time.perf_counter() - started


def measure(args, texts: list[str]) -> dict[str, ChatStats]:
    """Both servers up at once (the idle one costs nothing), measured in turns, ``--rounds``
    times: the other jobs of a shared machine then weigh on both modes alike."""
    from serve_load import free_port, start_server

    batches = {"one_at_a_time": 1, "batched": args.clients}
    ports = {mode: free_port() for mode in batches}
    servers = {mode: start_server(None, args.chat, None, ports[mode],
                                  ["--generation-batch", str(batch)])
               for mode, batch in batches.items()}
    stats = {mode: ChatStats() for mode in batches}
    try:
        for round_ in range(args.rounds):
            for mode in batches:
                print(f"round {round_ + 1}: {mode}, {args.clients} clients for "
                      f"{args.duration:.0f} s", flush=True)
                asyncio.run(drive(f"http://127.0.0.1:{ports[mode]}", texts, args.clients,
                                  args.duration, args.max_tokens, stats[mode], round_ == 0))
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGTERM)
        for server in servers.values():
            server.wait(300)
    return stats


def compare(args) -> dict:
    """Both modes on the same machine in the same run."""
    from serve_load import intent_texts

    modes = measure(args, intent_texts())
    single, batched = modes["one_at_a_time"].summary(), modes["batched"].summary()
    shared = set(modes["one_at_a_time"].replies) & set(modes["batched"].replies)
    differ = sorted(t for t in shared
                    if modes["one_at_a_time"].replies[t] != modes["batched"].replies[t])
    speedup = (batched["tokens_per_s"] / single["tokens_per_s"]
               if batched["tokens_per_s"] and single["tokens_per_s"] else None)
    met = {"speedup": speedup is not None and speedup >= TARGETS["speedup"],
           "p50_s": batched["p50_s"] is not None and batched["p50_s"] <= TARGETS["p50_s"],
           "errors": single["errors"] + batched["errors"] == TARGETS["errors"]}
    return {"machine": machine(usable_cores()), "chat": args.chat, "clients": args.clients,
            "duration_s": args.duration, "rounds": args.rounds,
            "max_tokens": args.max_tokens,
            "modes": {"one_at_a_time": single, "batched": batched},
            "speedup": round(speedup, 2) if speedup else None,
            "greedy_replies_compared": len(shared), "greedy_replies_differing": len(differ),
            "differing_examples": [{"prompt": t, "one_at_a_time":
                                    modes["one_at_a_time"].replies[t],
                                    "batched": modes["batched"].replies[t]}
                                   for t in differ[:3]],
            "targets": TARGETS, "met": met}


def report(results: dict, path: Path) -> None:
    print(f"\n{results['chat']}: {results['clients']} chat clients x "
          f"{results['duration_s']:.0f} s x {results['rounds']} rounds a mode, "
          f"max_tokens {results['max_tokens']}, "
          f"{results['machine']['cpu']}, {results['machine']['threads']} threads")
    print(f"{'mode':15} {'ok':>5} {'errors':>6} {'tokens/s':>9} {'p50 s':>7} {'p95 s':>7}")
    for name, row in results["modes"].items():
        print(f"{name:15} {row['ok']:>5} {row['errors']:>6} {row['tokens_per_s']!s:>9} "
              f"{row['p50_s']!s:>7} {row['p95_s']!s:>7}")
    print(f"speedup {results['speedup']}x; greedy replies differing "
          f"{results['greedy_replies_differing']} of {results['greedy_replies_compared']}; "
          f"targets met: {results['met']}")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")
