"""Tool-calling SFT on SGD: dialogtune vs TRL ``SFTTrainer``, plus dialogtune without tools.

    flock /tmp/dialogtune-bench.lock python benchmarks/tools_sgd.py \\
        [--domains sgd_banks_tools sgd_restaurants_tools] [--data-root ../shared/data]
        [--limit-dialogues N] [--max-steps N] [--json out.json]

Per domain, each system in its own process (so peak memory is its own), one LoRA epoch
on the embedded SmolLM2-135M, the same LoRA settings and learning rate:
- ``dialogtune``: ``train --task chat`` on the ``*_tools`` dialogues (tools, calls, results);
- ``trl``: ``SFTTrainer`` on the same dialogues. SmolLM2's own template ignores ``tools``
  and ``tool_calls`` (it would render a call turn empty), so TRL gets the very text
  dialogtune trains on: the messages in dialogtune's built-in tool format
  (``encode.tools.builtin_messages``: tool list in the system turn, calls as
  ``<tool_call>`` text, results as ``tool`` turns), rendered by TRL through the chat
  template. TRL defaults otherwise (batch 4, every token trained), in the precision
  dialogtune's ``train.precision=auto`` picks on this machine (recorded per system);
- ``no_tools``: dialogtune on the same dialogues with tool messages and call-only turns
  removed (``evaluate.chat_tools.without_tools``): what grounding buys.

All three are scored by the same ``dialogtune.evaluate.chat.evaluate_predictor`` on the held-out
``test.jsonl``: assistant perplexity (not comparable between with and without tools: the
former also scores call tokens), the ``tool_calls`` block (teacher-forced context, greedy)
and the ``grounding`` block (the no-tools run judged against the same tool results).
Throughput as in ``chat_sft_sgd.py``: tokens fed / s of the training loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chat_sft_sgd import count_batches, parse_with_workers, peak_rss_mib, trl_trainer
from machine import machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYSTEMS = ("dialogtune", "trl", "no_tools")


def load_split(args, split: str, tools: bool = True):
    from dialogtune.data.formats import read_dialogues
    from dialogtune.evaluate.chat_tools import without_tools

    dialogues = read_dialogues(args.data_root / args.domain / f"{split}.jsonl")
    limit = args.limit_dialogues if split == "train" else args.limit_test
    dialogues = dialogues[:limit] if limit else dialogues
    return dialogues if tools else [without_tools(d) for d in dialogues]


def max_length() -> int:
    from dialogtune.tasks import get_task

    return get_task("chat").defaults.get("data", {}).get("max_length") or 1024


def score(predictor, args, with_tools: bool) -> dict:
    from dialogtune.evaluate.chat import evaluate_predictor

    metrics, _, _ = evaluate_predictor(predictor, load_split(args, "test"), max_length(),
                                       args.generate_turns, args.max_new_tokens, with_tools)
    return metrics


def run_dialogtune(args, workdir: Path, tools: bool = True) -> dict:
    from dialogtune.config import load_config
    from dialogtune.data.formats.dialogue import dialogue_to_chat_json
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.pipeline import train_run

    train = workdir / "train.jsonl"
    train.write_text("".join(json.dumps(dialogue_to_chat_json(d)) + "\n"
                             for d in load_split(args, "train", tools)), encoding="utf-8")
    overrides = [f"train.num_threads={args.threads}", "train.save_every_steps=0"]
    overrides += [f"train.max_steps={args.max_steps}"] if args.max_steps else []
    summary = train_run(load_config(None, overrides, task="chat", output=str(workdir / "run"),
                                    **{"data.train": str(train), "model.name": "smollm2",
                                       "strategy.name": "lora"}))
    result = {"peak_rss_mib": peak_rss_mib(), "train_seconds": summary["train_seconds"],
              "tokens_fed": summary["tokens_fed"], "assistant_tokens": summary["tokens_trained"],
              "steps": summary["steps"], "lr": summary["lr"],
              "precision": summary["precision"]}
    result["eval"] = score(ChatPredictor.from_run(workdir / "run"), args, tools)
    return result


def run_trl(args, workdir: Path) -> dict:
    import torch

    from dialogtune.data.encode.chat import dialogue_tools, encode_dialogues, message_dicts
    from dialogtune.data.encode.tools import builtin_messages
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.models.lm import load_lm

    model, tokenizer, _ = load_lm("smollm2")
    dialogues = load_split(args, "train")
    assistant = [e.trained for e in encode_dialogues(tokenizer, dialogues, max_length())[0]]
    rows = [{"messages": builtin_messages(message_dicts(d), dialogue_tools(d))}
            for d in dialogues]
    trainer = trl_trainer(model, tokenizer, rows, args, workdir, max_length())
    seen = count_batches(trainer)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - started
    share = seen["examples"] / max(1, len(rows))
    result = {"peak_rss_mib": peak_rss_mib(), "train_seconds": train_seconds,
              "tokens_fed": seen["tokens"], "assistant_tokens": round(sum(assistant) * share),
              "steps": output.global_step, "lr": args.lr,
              "precision": "bf16" if trainer.args.bf16 else "fp32"}
    merged = trainer.model.merge_and_unload().eval()
    result["eval"] = score(ChatPredictor(merged, tokenizer, "trl"), args, True)
    return result


def worker(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix=f"tools_bench_{args.worker}_"))
    if args.worker == "trl":
        result = run_trl(args, workdir)
    else:
        result = run_dialogtune(args, workdir, tools=args.worker == "dialogtune")
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


def spawn(args, system: str) -> dict:
    result = Path(tempfile.mkstemp(suffix=".json")[1])
    forwarded = ["--data-root", str(args.data_root), "--threads", str(args.threads),
                 "--generate-turns", str(args.generate_turns), "--max-new-tokens",
                 str(args.max_new_tokens), "--lr", str(args.lr)]
    for flag, value in (("--limit-dialogues", args.limit_dialogues),
                        ("--limit-test", args.limit_test), ("--max-steps", args.max_steps)):
        forwarded += [flag, str(value)] if value else []
    print(f"[{args.domain}] {system} ...", flush=True)
    subprocess.run([sys.executable, __file__, "--worker", system, "--domain", args.domain,
                    "--result", str(result), *forwarded], check=True)
    return json.loads(result.read_text())


def _cell(result: dict, block: str | None, key: str) -> str:
    source = result["eval"].get(block) if block else result["eval"]
    value = (source or {}).get(key)
    return "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def report(domain: str, results: dict) -> str:
    rows = [f"### {domain}", "", "| | " + " | ".join(SYSTEMS) + " |",
            "|---|" + "---|" * len(SYSTEMS)]
    keys = [("tool_calls", k) for k in ("call_precision", "call_recall", "name_accuracy",
                                        "arguments_exact_match", "argument_f1",
                                        "json_valid_rate")]
    keys += [("grounding", k) for k in ("hallucinated_value_rate", "result_value_recall",
                                        "reference_hallucinated_value_rate")]
    keys += [(None, k) for k in ("perplexity", "bleu", "generated_turns")]
    for block, key in keys:
        cells = [_cell(results[s], block, key) for s in SYSTEMS]
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    for key in ("train_seconds", "tokens_fed", "peak_rss_mib", "steps"):
        rows.append(f"| {key} | " + " | ".join(f"{results[s][key]:.0f}" for s in SYSTEMS) + " |")
    speed = {s: results[s]["tokens_fed"] / max(results[s]["train_seconds"], 1e-9)
             for s in SYSTEMS}
    rows.append("| tokens fed / s | " + " | ".join(f"{speed[s]:.1f}" for s in SYSTEMS) + " |")
    rows += ["", f"dialogtune / TRL tokens fed per second: "
             f"{speed['dialogtune'] / max(speed['trl'], 1e-9):.2f}x", ""]
    return "\n".join(rows)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domains", nargs="+", default=["sgd_banks_tools",
                                                         "sgd_restaurants_tools"])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--limit-dialogues", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--generate-turns", type=int, default=40,
                        help="call turns scored per system (word turns in between too)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    return parse_with_workers(parser, argv, list(SYSTEMS))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    print(json.dumps(machine(args.threads)), flush=True)
    results = {"machine": machine(args.threads)}
    for domain in args.domains:
        args.domain = domain
        results[domain] = {s: spawn(args, s) for s in args.systems}
        if set(args.systems) == set(SYSTEMS):
            print(report(domain, results[domain]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
