"""Batched vs one-at-a-time chat generation in ``dialogtune serve``, in the same run.

run: flock /tmp/dialogtune-bench.lock .venv/bin/python benchmarks/serve_load.py \
         --compare-batching [--clients 8] [--duration 60] [--max-tokens 16] [--chat smollm2]

Starts two servers (chat only, no log) on the same model: ``--generation-batch 1`` (the
one-at-a-time worker: each reply a whole ``generate``) and ``--generation-batch CLIENTS``
(replies decoded together, one forward pass a step), each in every precision of
``--precisions`` (default ``fp32 auto``: float32, and bf16 where the server's ``auto``
takes it). They are measured in turns,
``--rounds`` times (on a shared machine other jobs come and go; turns weigh them on both
alike), each turn ``--clients`` chat clients sending requests back to back for
``--duration`` seconds, after one warm-up request per server; prompts are the utterances of ``examples/intents_test.csv``, greedy,
``--max-tokens`` each. Per mode: aggregate generated tokens/s (``usage.completion_tokens``
of the successful replies over the phase), p50/p95 latency, errors; and, for the prompts
both modes answered, how many replies differ (greedy: none should).

Targets (issue 14): batched ≥ 3× the tokens/s of the one-at-a-time float32 worker (the
server before batching), batched chat p50 ≤ 3 s,
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


def server_modes(args) -> dict[str, tuple[int, str]]:
    """Mode name -> (``--generation-batch``, ``--precision``). float32 keeps the plain names
    (the one-at-a-time float32 worker is what the server ran before batching and bf16);
    every other precision in ``--precisions`` adds a pair named after it."""
    modes = {}
    for precision in dict.fromkeys(["fp32", *args.precisions]):  # float32: the baseline
        suffix = "" if precision == "fp32" else f"_{precision}"
        modes[f"one_at_a_time{suffix}"] = (1, precision)
        modes[f"batched{suffix}"] = (args.clients, precision)
    return modes


def served_precision(port: int) -> str | None:
    """The precision the server resolved for its chat model (``/v1/models``)."""
    cards = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"]
    return next((card.get("precision") for card in cards if card.get("task") == "chat"), None)


def measure(args, texts: list[str]) -> tuple[dict[str, ChatStats], dict[str, str | None]]:
    """Every server up at once (an idle one costs nothing), measured in turns, ``--rounds``
    times: the other jobs of a shared machine then weigh on every mode alike."""
    from serve_load import free_port, start_server

    modes = server_modes(args)
    ports = {mode: free_port() for mode in modes}
    servers = {mode: start_server(None, args.chat, None, ports[mode],
                                  ["--generation-batch", str(batch), "--precision", precision])
               for mode, (batch, precision) in modes.items()}
    stats = {mode: ChatStats() for mode in modes}
    try:
        resolved = {mode: served_precision(port) for mode, port in ports.items()}
        for round_ in range(args.rounds):
            for mode in modes:
                print(f"round {round_ + 1}: {mode}, {args.clients} clients for "
                      f"{args.duration:.0f} s", flush=True)
                asyncio.run(drive(f"http://127.0.0.1:{ports[mode]}", texts, args.clients,
                                  args.duration, args.max_tokens, stats[mode], round_ == 0))
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGTERM)
        for server in servers.values():
            server.wait(300)
    return stats, resolved


def differing(first: ChatStats, second: ChatStats) -> tuple[int, list[str]]:
    """(prompts both answered, those whose greedy replies differ)."""
    shared = set(first.replies) & set(second.replies)
    return len(shared), sorted(t for t in shared if first.replies[t] != second.replies[t])


def ratio(rows: dict, top: str, bottom: str) -> float | None:
    a, b = rows.get(top, {}).get("tokens_per_s"), rows.get(bottom, {}).get("tokens_per_s")
    return round(a / b, 2) if a and b else None


def compare(args) -> dict:
    """Every mode on the same machine in the same run. The target's ratio is the fastest
    batched mode over the float32 one-at-a-time worker; each precision's own batching
    ratio (same weights in both modes) is reported beside it."""
    from serve_load import intent_texts

    stats, resolved = measure(args, intent_texts())
    rows = {mode: stat.summary() for mode, stat in stats.items()}
    batched = [m for m in rows if m.startswith("batched")]
    best = max(batched, key=lambda m: rows[m]["tokens_per_s"] or 0)
    speedups = {f"{m}/one_at_a_time": ratio(rows, m, "one_at_a_time") for m in batched}
    speedups.update({f"{m}/{m.replace('batched', 'one_at_a_time')}":
                     ratio(rows, m, m.replace("batched", "one_at_a_time")) for m in batched})
    speedup = ratio(rows, best, "one_at_a_time")
    compared, differ = differing(stats["one_at_a_time"], stats["batched"])
    met = {"speedup": speedup is not None and speedup >= TARGETS["speedup"],
           "p50_s": rows[best]["p50_s"] is not None and rows[best]["p50_s"] <= TARGETS["p50_s"],
           "errors": sum(row["errors"] for row in rows.values()) == TARGETS["errors"]}
    return {"machine": machine(usable_cores()), "chat": args.chat, "clients": args.clients,
            "duration_s": args.duration, "rounds": args.rounds,
            "max_tokens": args.max_tokens, "precision": resolved,
            "modes": rows, "speedup": speedup, "speedup_mode": best, "speedups": speedups,
            "greedy_replies_compared": compared, "greedy_replies_differing": len(differ),
            "differing_examples": [{"prompt": t, "one_at_a_time":
                                    stats["one_at_a_time"].replies[t],
                                    "batched": stats["batched"].replies[t]}
                                   for t in differ[:3]],
            "targets": TARGETS, "met": met}


def report(results: dict, path: Path) -> None:
    print(f"\n{results['chat']}: {results['clients']} chat clients x "
          f"{results['duration_s']:.0f} s x {results['rounds']} rounds a mode, "
          f"max_tokens {results['max_tokens']}, "
          f"{results['machine']['cpu']}, {results['machine']['threads']} threads")
    print(f"{'mode':20} {'dtype':>5} {'ok':>5} {'errors':>6} {'tokens/s':>9} {'p50 s':>7} {'p95 s':>7}")
    for name, row in results["modes"].items():
        print(f"{name:20} {results['precision'][name]!s:>5} {row['ok']:>5} {row['errors']:>6} {row['tokens_per_s']!s:>9} "
              f"{row['p50_s']!s:>7} {row['p95_s']!s:>7}")
    print("tokens/s ratios: " + ", ".join(f"{k} {v}x" for k, v in results["speedups"].items()))
    print(f"speedup {results['speedup']}x ({results['speedup_mode']} over the float32 "
          f"one-at-a-time worker); float32 greedy replies differing "
          f"{results['greedy_replies_differing']} of {results['greedy_replies_compared']}; "
          f"targets met: {results['met']}")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path}")
