"""Chat SFT on SGD: dialogtune LoRA vs TRL SFTTrainer + LoRA, same model, data and metrics.

    python benchmarks/chat_sft_sgd.py [--domains sgd_restaurants sgd_banks]
        [--data-root ../shared/data] [--limit-dialogues N] [--max-steps N] [--json out.json]

Per domain: the base model, dialogtune (``train --task chat``, LoRA r=16 / alpha 32 on all
linear layers, 1 epoch, its default lr) and TRL (``SFTTrainer``, the same LoRA settings,
epochs and learning rate; batch 4, the precision dialogtune picks, other TRL defaults, so
it trains on every token) are scored by the SAME code, ``dialogtune.evaluate.chat.evaluate_predictor``:
held-out assistant perplexity and BLEU / ROUGE-L / slot recall of greedy replies.

Throughput, both systems: tokens fed = every non-pad token given to the model; assistant
tokens = the tokens of assistant replies (dialogtune's mask) among them; each per second of
the training loop. Peak memory = the training process's RSS high-water mark (getrusage),
each system in its own process. Needs ``pip install -e .[bench]`` (TRL).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_LENGTH = 1024
SYSTEMS = {"base": "base", "ours": "dialogtune", "trl": "trl"}  # flag -> result key
SAMPLES = 6  # reply samples kept per system, for reading beside the figures


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_split(args, split: str):
    from dialogtune.data.formats import read_dialogues

    dialogues = read_dialogues(args.data_root / args.domain / f"{split}.jsonl")
    limit = args.limit_dialogues if split == "train" else args.limit_test
    return dialogues[:limit] if limit else dialogues


def score(predictor, args) -> dict:
    from dialogtune.evaluate.chat import evaluate_predictor

    metrics, samples, replies = evaluate_predictor(predictor, load_split(args, "test"),
                                                   MAX_LENGTH, args.generate_turns,
                                                   args.max_new_tokens)
    metrics["samples"] = [{"user": sample.context[-1]["content"], "reference": sample.reference,
                           "reply": reply} for sample, reply in zip(samples[:SAMPLES], replies)]
    return metrics


def run_base(args) -> dict:
    from dialogtune.inference.chat import ChatPredictor

    return {"eval": score(ChatPredictor.from_model("smollm2"), args)}


def run_ours(args, workdir: Path) -> dict:
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.config import load_config
    from dialogtune.data.formats.dialogue import dialogue_to_chat_json
    from dialogtune.pipeline import train_run

    train = workdir / "train.jsonl"
    train.write_text("".join(json.dumps(dialogue_to_chat_json(d)) + "\n"
                             for d in load_split(args, "train")), encoding="utf-8")
    overrides = [f"train.num_threads={args.threads}", "train.save_every_steps=0"]
    overrides += [f"train.max_steps={args.max_steps}"] if args.max_steps else []
    started = time.perf_counter()
    summary = train_run(load_config(None, overrides, task="chat", output=str(workdir / "run"),
                                    **{"data.train": str(train), "model.name": "smollm2",
                                       "strategy.name": "lora"}))
    result = {"wall_seconds": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib(),
              "train_seconds": summary["train_seconds"], "tokens_fed": summary["tokens_fed"],
              "assistant_tokens": summary["tokens_trained"], "steps": summary["steps"],
              "lr": summary["lr"],
              "precision": summary["precision"]}
    result["eval"] = score(ChatPredictor.from_run(workdir / "run"), args)
    return result


def count_batches(trainer) -> dict:
    """Wrap the trainer's collator to count the non-pad tokens and examples it feeds."""
    seen = {"tokens": 0, "examples": 0}
    collate = trainer.data_collator

    def counting_collator(examples):
        batch = collate(examples)
        mask = batch.get("attention_mask")
        seen["tokens"] += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        seen["examples"] += len(examples)
        return batch

    trainer.data_collator = counting_collator
    return seen


def trl_trainer(model, tokenizer, rows: list[dict], args, workdir: Path, max_length: int):
    """TRL's ``SFTTrainer`` as both SGD benchmarks run it: the same LoRA as dialogtune's
    chat default, one epoch, batch 4, the precision dialogtune's ``train.precision=auto``
    picks on this machine (bf16 autocast where bf16 matmuls are fast, as TRL's own default
    ``bf16=True``; float32 elsewhere, where TRL's bf16 would be emulated and far slower),
    other TRL defaults (loss on every token, gradient checkpointing, full logits, padding)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from dialogtune.precision import resolve_precision

    config = SFTConfig(output_dir=str(workdir / "trl"), num_train_epochs=1, learning_rate=args.lr,
                       per_device_train_batch_size=4, use_cpu=True,
                       bf16=resolve_precision("auto") == "bf16",
                       max_length=max_length, save_strategy="no", report_to=[],
                       logging_steps=10, seed=42, max_steps=args.max_steps or -1)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer, peft_config=lora)


def run_trl(args, workdir: Path) -> dict:
    import torch

    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.data.encode.chat import encode_dialogues, message_dicts
    from dialogtune.models.lm import load_lm

    started = time.perf_counter()
    model, tokenizer, _ = load_lm("smollm2")  # plain float: TRL refuses a "GGUF" model
    dialogues = load_split(args, "train")
    assistant = [e.trained for e in encode_dialogues(tokenizer, dialogues, MAX_LENGTH)[0]]
    rows = [{"messages": message_dicts(d)} for d in dialogues]
    trainer = trl_trainer(model, tokenizer, rows, args, workdir, MAX_LENGTH)
    seen = count_batches(trainer)
    torch.set_num_threads(args.threads)
    loop_started = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - loop_started
    share = seen["examples"] / max(1, len(rows))  # < 1 only for --max-steps runs
    result = {"wall_seconds": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib(),
              "train_seconds": train_seconds, "tokens_fed": seen["tokens"],
              "assistant_tokens": round(sum(assistant) * share), "steps": output.global_step,
              "lr": args.lr, "precision": "bf16" if trainer.args.bf16 else "fp32"}
    merged = trainer.model.merge_and_unload().eval()
    result["eval"] = score(ChatPredictor(merged, tokenizer, "trl"), args)
    return result


def worker(args) -> int:
    """One system in its own process, so its peak memory is its own."""
    import torch

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix=f"chat_bench_{args.worker}_"))
    runner = {"base": run_base, "ours": run_ours, "trl": run_trl}[args.worker]
    result = runner(args) if args.worker == "base" else runner(args, workdir)
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


def spawn(args, system: str, domain: str) -> dict:
    result = Path(tempfile.mkstemp(suffix=".json")[1])
    command = [sys.executable, __file__, "--worker", system, "--domain", domain,
               "--result", str(result), *forwarded(args)]
    print(f"[{domain}] {system} ...", flush=True)
    subprocess.run(command, check=True)
    return json.loads(result.read_text())


def forwarded(args) -> list[str]:
    out = ["--data-root", str(args.data_root), "--threads", str(args.threads),
           "--generate-turns", str(args.generate_turns), "--max-new-tokens",
           str(args.max_new_tokens), "--lr", str(args.lr)]
    out += ["--limit-dialogues", str(args.limit_dialogues)] if args.limit_dialogues else []
    out += ["--limit-test", str(args.limit_test)] if args.limit_test else []
    return out + (["--max-steps", str(args.max_steps)] if args.max_steps else [])


def rates(result: dict) -> tuple[float, float]:
    seconds = max(result["train_seconds"], 1e-9)
    return result["tokens_fed"] / seconds, result["assistant_tokens"] / seconds


def report(domain: str, systems: dict) -> str:
    """A markdown table of the systems run (base, dialogtune, TRL: any of them)."""
    names = list(systems)
    rows = [f"### {domain}", "", "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, fmt in (("perplexity", "{:.2f}"), ("nll", "{:.3f}"), ("bleu", "{:.2f}"),
                     ("rouge_l", "{:.3f}"), ("slot_value_recall", "{:.3f}")):
        cells = [fmt.format(r["eval"][key]) if r["eval"].get(key) is not None else "n/a"
                 for r in systems.values()]
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    trained = {name: r for name, r in systems.items() if "train_seconds" in r}
    for label, index in (("tokens fed / s", 0), ("assistant tokens / s", 1)):
        rows.append(f"| {label} | " + " | ".join(
            f"{rates(trained[n])[index]:.1f}" if n in trained else "" for n in names) + " |")
    for key in ("train_seconds", "wall_seconds", "peak_rss_mib", "steps", "tokens_fed",
                "assistant_tokens"):
        rows.append(f"| {key} | " + " | ".join(
            f"{trained[n][key]:.0f}" if n in trained else "" for n in names) + " |")
    return "\n".join(rows + ["", ratios(systems), ""])


def ratios(systems: dict) -> str:
    """dialogtune against TRL (speed, perplexity) and against the base model, where run."""
    ours, trl, base = (systems.get(n) for n in ("dialogtune", "trl", "base"))
    parts = []
    if ours and trl:
        ratio = [rates(ours)[i] / max(rates(trl)[i], 1e-9) for i in (0, 1)]
        parts.append(f"dialogtune / TRL: tokens fed/s {ratio[0]:.2f}x, assistant tokens/s "
                     f"{ratio[1]:.2f}x; perplexity dialogtune/TRL "
                     f"{ours['eval']['perplexity'] / trl['eval']['perplexity']:.2f}")
    if ours and base:
        parts.append(f"perplexity dialogtune/base "
                     f"{ours['eval']['perplexity'] / base['eval']['perplexity']:.2f}")
    return "; ".join(parts)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--domains", nargs="+", default=["sgd_restaurants", "sgd_banks"])
    parser.add_argument("--limit-dialogues", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=None,
                        help="Score only the first N test dialogues (quick runs).")
    parser.add_argument("--generate-turns", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=None,
                        help="Learning rate for TRL (default: dialogtune's LoRA chat rate).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS),
                        help="Which systems to run (e.g. base ours: no TRL comparison).")
    parser.add_argument("--json", type=Path, default=None)
    return parse_with_workers(parser, argv, list(SYSTEMS))


def parse_with_workers(parser: argparse.ArgumentParser, argv, workers: list[str]):
    """Parse after adding the hidden flags a spawned worker gets; ``--lr`` defaults to
    dialogtune's LoRA chat rate (shared by the benchmarks that spawn one process a system)."""
    parser.add_argument("--worker", choices=workers, help=argparse.SUPPRESS)
    parser.add_argument("--domain", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lr is None:
        from dialogtune.strategies import CAUSAL_LM, get_strategy

        args.lr = get_strategy("lora").learning_rate(CAUSAL_LM)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    results, text = {}, []
    for domain in args.domains:
        results[domain] = {SYSTEMS[s]: spawn(args, s, domain) for s in args.systems}
        text.append(report(domain, results[domain]))
        print(text[-1], flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
