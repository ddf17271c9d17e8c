"""BANKING77 intent inference: PyTorch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8.

run: flock /tmp/dialogtune-bench.lock python benchmarks/intent_onnx.py --json \
         benchmarks/intent_onnx_results.json [--run DIR] [--train-subset N]

Without ``--run`` it trains the default intent run (``dialogtune train --task intent``)
on ``train.csv`` (or a stratified ``--train-subset`` of it), then in the same process tree:
  1. ``dialogtune export RUN --format onnx --output RUN/onnx`` and, with ``--quantize int8``,
     ``RUN/onnx-int8`` (command seconds);
     An int8 variant with per-channel scales is measured beside the default.
  2. single-utterance latency (batch 1, ``--threads`` threads): ``probabilities([text])``
     of each predictor (tokenisation included), in alternating blocks; p50 / p95;
  3. test accuracy of each backend over the whole test set, and how often the ONNX
     backends' top intent agrees with PyTorch's;
  4. ``/v1/intents`` alone (one client, one utterance per request, back to back) on
     ``dialogtune serve --intent RUN/onnx-int8 --backend onnx`` and, as the peer, the
     same server on the torch backend; p50 / p95.
Targets (issue 14): int8 >= 3x faster than PyTorch fp32 single-utterance on 2 cores,
accuracy drop <= 0.5 point, ``/v1/intents`` p50 <= 5 ms.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import machine
from serve_load import free_port

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"
CLI = [sys.executable, "-m", "dialogtune.cli"]


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["text"], row["category"]) for row in csv.DictReader(handle)]


def stratified_subset(rows: list[tuple[str, str]], size: int, seed: int = 0) -> list:
    """``size`` rows with each intent's share kept (at least one per intent)."""
    by_label: dict[str, list] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rng, picked = random.Random(seed), []
    for label_rows in by_label.values():
        rng.shuffle(label_rows)
        picked += label_rows[:max(1, round(size * len(label_rows) / len(rows)))]
    return picked


def train(data: Path, work: Path, subset: int | None, threads: int) -> tuple[Path, dict]:
    """The default intent run on ``train.csv`` (or a stratified subset of it)."""
    train_file = data / "train.csv"
    if subset:
        train_file = work / "train_subset.csv"
        with train_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "category"])
            writer.writerows(stratified_subset(read_rows(data / "train.csv"), subset))
    run = work / "run"
    started = time.perf_counter()
    subprocess.run([*CLI, "train", "--task", "intent", "--data", str(train_file), "--output",
                    str(run), "--set", f"train.num_threads={threads}"], check=True)
    summary = json.loads((run / "run.json").read_text())
    return run, {"train_examples": summary["train_examples"], "subset": subset,
                 "train_seconds": summary["train_seconds"],
                 "command_seconds": round(time.perf_counter() - started, 1)}


def export(run: Path, name: str, extra: list[str]) -> float:
    """``dialogtune export`` timed; a previous export of this benchmark's is replaced."""
    shutil.rmtree(run / name, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([*CLI, "export", str(run), "--format", "onnx", "--output", str(run / name),
                    *extra], check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 1)


def per_channel_variant(run: Path) -> Path:
    """The int8 export re-quantized with one scale per output channel (``per_channel``):
    measured beside the default (one scale per tensor) to keep whichever is better."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = run / "onnx-int8-per-channel"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(run / "onnx-int8", folder)
    quantize_dynamic(str(run / "onnx" / "model.onnx"), str(folder / "model.onnx"),
                     weight_type=QuantType.QInt8, per_channel=True)
    return folder


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "n": len(ms)}


def single_latency(predictors: dict, texts: list[str], rounds: int = 4,
                   warmup: int = 10) -> dict:
    """Each predictor's ``probabilities([text])`` over ``texts``, in ``rounds`` blocks per
    predictor (the order rotating each round, so that load from other users spreads over
    all of them). Not interleaved per utterance: torch's OpenMP threads and ONNX Runtime's
    pool spin for a while after each call, and a backend measured right after another ran
    on cores those threads still held (a first run so measured: torch fp32 p50 49.9 ms,
    against 5 ms alone)."""
    times: dict[str, list[float]] = {name: [] for name in predictors}
    names, size = list(predictors), len(texts) // rounds
    for round_ in range(rounds):
        block = texts[round_ * size:(round_ + 1) * size]
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            time.sleep(0.5)  # the previous backend's threads go idle
            for i, text in enumerate(block):
                started = time.perf_counter()
                predictors[name].probabilities([text])
                if i >= warmup:
                    times[name].append(time.perf_counter() - started)
    return {name: percentiles(values) for name, values in times.items()}


def accuracy(predictors: dict, test: list[tuple[str, str]]) -> dict:
    """Test accuracy of each backend and its top-intent agreement with PyTorch's."""
    texts = [text for text, _ in test]
    found = {}
    for name, predictor in predictors.items():
        probs = predictor.probabilities(texts)
        found[name] = [predictor.labels.labels[i] for i in probs.argmax(1)]
    gold = [label for _, label in test]
    return {name: {"accuracy": round(float(np.mean([p == g for p, g in zip(labels, gold)])), 4),
                   "agreement_with_torch": round(float(np.mean(
                       [p == t for p, t in zip(labels, found["torch_fp32"])])), 4)}
            for name, labels in found.items()}


def serve_latency(intent: Path, backend: str, texts: list[str], warmup: int = 20) -> dict:
    """``/v1/intents`` alone on a ``dialogtune serve`` subprocess: one client, back to back."""
    import httpx

    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--intent", str(intent), "--backend", backend,
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {backend} server did not start")
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            seconds = []
            for i, text in enumerate(texts):
                started = time.perf_counter()
                http.post("/v1/intents", json={"text": text}).raise_for_status()
                if i >= warmup:
                    seconds.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(60)
    return percentiles(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--run", type=Path, help="an existing intent run (default: train one)")
    parser.add_argument("--train-subset", type=int, help="train on a stratified N utterances")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-utterances", type=int, default=520)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict = {"machine": machine(args.threads)}
    print("machine:", json.dumps(results["machine"]), flush=True)
    run = args.run
    if run is None:
        run, results["training"] = train(args.data_root, Path(tempfile.mkdtemp(
            prefix="bench-onnx-")), args.train_subset, args.threads)
    else:
        summary = json.loads((run / "run.json").read_text())
        results["training"] = {k: summary[k] for k in ("train_examples", "train_seconds")}
    results["run"] = str(run)
    results["export_seconds"] = {"onnx_fp32": export(run, "onnx", []),
                                 "onnx_int8": export(run, "onnx-int8", ["--quantize", "int8"])}
    results.update(measure(run, read_rows(args.data_root / "test.csv"), args))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def measure(run: Path, test: list, args) -> dict:
    import torch

    from dialogtune.inference.intent import load_classifier
    from dialogtune.inference.onnx import load_onnx_predictor

    torch.set_num_threads(args.threads)
    predictors = {"torch_fp32": load_classifier(run),
                  "onnx_fp32": load_onnx_predictor(run / "onnx", args.threads),
                  "onnx_int8": load_onnx_predictor(run / "onnx-int8", args.threads),
                  "onnx_int8_per_channel": load_onnx_predictor(per_channel_variant(run),
                                                               args.threads)}
    texts = [text for text, _ in random.Random(1).sample(test, args.latency_utterances)]
    with torch.inference_mode():
        latency = single_latency(predictors, texts)
        print("single utterance:", json.dumps(latency), flush=True)
        quality = accuracy(predictors, test)
        print("accuracy:", json.dumps(quality), flush=True)
    del predictors
    serve = {"onnx_int8": serve_latency(run / "onnx-int8", "onnx", texts[:320]),
             "torch_fp32": serve_latency(run, "torch", texts[:320])}
    print("/v1/intents:", json.dumps(serve), flush=True)
    speedup = latency["torch_fp32"]["p50_ms"] / latency["onnx_int8"]["p50_ms"]
    drop = (quality["torch_fp32"]["accuracy"] - quality["onnx_int8"]["accuracy"]) * 100
    return {"single_utterance": latency, "accuracy": quality, "serve_v1_intents": serve,
            "int8_speedup_p50": round(speedup, 2), "int8_accuracy_drop_points": round(drop, 2),
            "targets": {"int8_speedup_at_least_3x": speedup >= 3.0,
                        "accuracy_drop_at_most_0.5_point": drop <= 0.5,
                        "v1_intents_p50_at_most_5_ms": serve["onnx_int8"]["p50_ms"] <= 5.0}}


if __name__ == "__main__":
    main()
