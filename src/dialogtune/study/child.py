"""One study cell, in its own process: ``python -m dialogtune.study.child CELL_DIR``.

Trains the cell's request (``pipeline.train_run``; resumed from its checkpoint when one
exists, skipped when its weights exist), records the training's peak memory, evaluates the
run on the study's test data (``pipeline.evaluate_run``), times single requests, and writes
the cell's row (``cell.json``) last. User errors print one ``error: …`` line, exit code 2.
"""

from __future__ import annotations

import json
import logging
import re
import resource
import sys
import time
from pathlib import Path

from ..checkpoint import find_checkpoint
from ..config import load_config
from ..errors import DialogtuneError
from ..pipeline import evaluate_run, train_run
from ..runs.layout import RunDir
from ..strategies import CAUSAL_LM
from ..tasks import get_task
from .cells import CellDir, write_json

# The quality metrics a row keeps, those the run's evaluation reports: intent and NLU
# (accuracy, macro F1, slots), chat (perplexity, NLL, BLEU, ROUGE-L).
QUALITY_KEYS = ("accuracy", "macro_f1", "slot_f1", "sentence_accuracy", "perplexity", "nll",
                "bleu", "rouge_l")
# Chat latency: a greedy reply of at most this many new tokens to the first test turns
# (the first timed reply is a warm-up and dropped): cheap, and what a user waits for.
REPLY_TOKENS = 16
REPLY_SAMPLES = 5


def peak_memory_mib() -> float:
    """This process image's peak resident memory (``VmHWM``), in MiB; elsewhere than
    Linux ``ru_maxrss`` (which may include the parent's, see ``cells``)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
        return round(int(re.search(r"VmHWM:\s+(\d+)\s+kB", status).group(1)) / 1024, 1)
    except (OSError, AttributeError):
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def train_cell(folder: CellDir):
    """Train (or resume) the cell unless its weights exist; returns its config."""
    cfg = load_config(folder.request)
    run = RunDir(folder.path)
    if not run.weights.exists():
        resume = find_checkpoint(run.checkpoint.path) is not None
        train_run(cfg, resume=resume)
        write_json(folder.peak, {"peak_memory_mib": peak_memory_mib(), "resumed": resume})
    return cfg


def reply_latency_ms(predictor, records: list) -> float | None:
    """Median time to a short greedy reply to a test turn (None without dialogues)."""
    from ..data.records import Dialogue
    from ..evaluate.chat import generation_samples

    samples = generation_samples([r for r in records if isinstance(r, Dialogue)],
                                 REPLY_SAMPLES + 1)
    times = []
    for sample in samples:
        started = time.perf_counter()
        predictor.chat(sample.context, max_new_tokens=REPLY_TOKENS, temperature=0.0)
        times.append(1000 * (time.perf_counter() - started))
    times = times[1:] or times
    return round(sorted(times)[len(times) // 2], 2) if times else None


def latency(cfg, run: Path, eval_data: str, metrics: dict) -> tuple[float | None, str]:
    """(p50 latency in ms, what was timed): the evaluation's single-utterance timing for
    classifiers; a short reply for causal LMs."""
    if "single_utterance_latency_ms_p50" in metrics:
        return (round(metrics["single_utterance_latency_ms_p50"], 2),
                "one test utterance classified alone (median of up to 50)")
    task = get_task(cfg.task)
    if task.model_kind != CAUSAL_LM:
        return None, "not measured"
    value = reply_latency_ms(task.load_predictor(run, None), task.read_data(cfg, eval_data))
    return value, (f"a greedy reply of at most {REPLY_TOKENS} tokens to a test turn "
                   f"(median of {REPLY_SAMPLES})")


def run_cell(folder: CellDir) -> dict:
    """Train, evaluate and time the cell; writes and returns its row."""
    spec = json.loads(folder.spec.read_text(encoding="utf-8"))
    cfg = train_cell(folder)
    run = RunDir(folder.path)
    summary = run.read_json(run.summary)
    metrics = evaluate_run(run.path, spec["eval_data"], output=folder.eval_metrics)
    p50, measure = latency(cfg, run.path, spec["eval_data"], metrics)
    peak = json.loads(folder.peak.read_text()) if folder.peak.exists() else {}
    row = {"cell": folder.path.name, **spec["labels"], "task": cfg.task,
           "trainable_parameters": summary["trainable_parameters"],
           "total_parameters": summary["total_parameters"],
           "train_seconds": summary["train_seconds"],
           "peak_memory_mib": peak.get("peak_memory_mib"),
           "metrics": {k: metrics[k] for k in QUALITY_KEYS
                       if isinstance(metrics.get(k), (int, float))},
           "p50_latency_ms": p50, "latency_measure": measure,
           "train_examples": summary.get("train_examples", summary.get("train_sequences")),
           "run_dir": str(run.path), "settings": spec["settings"], "digests": spec["digests"]}
    write_json(folder.row, row)
    return row


def main(argv: list[str]) -> int:
    from ..cli import quiet_libraries

    logging.basicConfig(level=logging.INFO, format="dialogtune: %(message)s")
    quiet_libraries()
    try:
        run_cell(CellDir(Path(argv[0])))
    except DialogtuneError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
