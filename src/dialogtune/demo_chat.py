"""The chat half of ``make demo``: LoRA fine-tuning of the embedded SmolLM2 on the example
support dialogues, then base vs tuned perplexity and replies side by side.

All 72 training dialogues, one epoch, one dialogue per step (the chat defaults); held-out:
the 20 test dialogues. Measured: 100 s end to end on the shared 2-core machine
(benchmarks/RESULTS.md, "Chat demo"), far inside the 6-minute budget.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

from .resources import available_threads

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOWN_REPLIES = 3


def example_file(name: str, examples: Path = EXAMPLES) -> Path:
    path = examples / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: the demo reads the repository's examples/ folder")
    return path


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _print_side_by_side(samples, base: list[str], tuned: list[str], width: int = 38) -> None:
    for sample, left, right in zip(samples, base, tuned):
        user = sample.context[-1]["content"]
        print(f"\n  user: {user}")
        print(f"  {'reference':<{width}}  {'base':<{width}}  {'tuned':<{width}}")
        columns = [textwrap.wrap(t or "(empty)", width) for t in (sample.reference, left, right)]
        for row in range(max(len(c) for c in columns)):
            cells = [c[row] if row < len(c) else "" for c in columns]
            print("  " + "  ".join(f"{cell:<{width}}" for cell in cells))


def train_demo_run(run: Path, threads: int, data: str = "dialogues_train.jsonl",
                   overrides: tuple[str, ...] = (), examples: Path = EXAMPLES) -> dict:
    """Train the demo run on ``<examples>/<data>``, resume an interrupted one, or reuse a
    finished one."""
    import json

    from .config import load_config
    from .pipeline import train_run
    from .runs.layout import RunDir

    files = RunDir(run)
    if files.summary.exists():
        print(f"reusing the finished run in {run} (delete it to train again)")
        return json.loads(files.summary.read_text(encoding="utf-8"))
    cfg = load_config(None, ["train.save_every_steps=20", f"train.num_threads={threads}",
                             *overrides], task="chat", output=str(run),
                      **{"data.train": str(example_file(data, examples)),
                         "model.name": "smollm2", "strategy.name": "lora"})
    return train_run(cfg, resume=files.checkpoint.path.exists())


def _score(run: Path, examples: Path) -> tuple[list, dict]:
    """Held-out perplexity and the first replies, base model then tuned run."""
    from .data.formats import read_dialogues
    from .evaluate.chat import generate_replies, generation_samples, perplexity_metrics
    from .inference.chat import ChatPredictor

    test = read_dialogues(example_file("dialogues_test.jsonl", examples))
    samples = generation_samples(test, SHOWN_REPLIES)
    results = {}
    for name, load in (("base", lambda: ChatPredictor.from_model("smollm2")),
                       ("tuned", lambda: ChatPredictor.from_run(run))):
        predictor = load()
        scores = perplexity_metrics(predictor.model, predictor.tokenizer, test, 1024)
        results[name] = {"perplexity": scores["perplexity"],
                         "replies": generate_replies(predictor, samples, 48)}
        del predictor  # one model in memory at a time
    return samples, results


def run_chat_demo(output_dir: str | Path, examples: Path = EXAMPLES) -> dict:
    """Train, evaluate and print; returns the headline numbers."""
    import torch

    started, threads = time.perf_counter(), available_threads()
    torch.set_num_threads(threads)
    run = Path(output_dir) / "chat_lora"
    train, test = (_lines(example_file(f"dialogues_{s}.jsonl", examples)) for s in ("train", "test"))
    print(f"chat demo: LoRA (r=16, all linear layers) on SmolLM2-135M-Instruct, all {train} "
          f"example dialogues, 1 epoch, 1 dialogue per step; held out: the {test} test "
          f"dialogues; {threads} thread(s)", flush=True)
    summary = train_demo_run(run, threads, examples=examples)
    samples, results = _score(run, examples)
    base, tuned = results["base"]["perplexity"], results["tuned"]["perplexity"]
    print(f"\nheld-out assistant perplexity: base {base:.2f} -> tuned {tuned:.2f} "
          f"({tuned / base:.2f}x); {summary['steps']} steps, {summary['train_seconds']:.0f} s "
          f"training at {summary['tokens_per_second']:.0f} tokens/s")
    _print_side_by_side(samples, results["base"]["replies"], results["tuned"]["replies"])
    elapsed = time.perf_counter() - started
    print(f"\nchat demo done in {elapsed:.0f} s; run folder: {run}")
    return {"base_perplexity": base, "tuned_perplexity": tuned, "seconds": elapsed,
            "run": str(run)}


if __name__ == "__main__":
    run_chat_demo(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
