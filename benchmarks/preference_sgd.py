"""Preference tuning on SGD banks with tools: SFT, then DPO (dialogtune vs TRL DPOTrainer).

    flock /tmp/dialogtune-bench.lock python benchmarks/preference_sgd.py \\
        [--data-root ../shared/data] [--limit-train N] [--limit-test N] [--max-steps N]
        [--trl-max-steps N] [--reuse --workdir DIR] [--sft-weight W] [--systems dialogtune]
        [--dialogtune-set KEY=VALUE ...] [--generate-turns 40] [--threads 2] [--json out.json]

1. ``sft``: ``train --task chat`` on ``sgd_banks_tools/train.jsonl`` (LoRA, the chat task's
   defaults), scored on ``test.jsonl`` (perplexity, ``grounding``, ``tool_calls``).
2. Pairs (``data make-preferences`` without ``--from``): every word reply of the training
   split as chosen, the same reply with one fact swapped as rejected; the same from the
   test split as held-out pairs.
3. ``dialogtune``: ``train --task preference --method dpo --model SFT_RUN`` (its defaults:
   LoRA r=16 / alpha 32, 4 pairs a step, lr 1e-4, β 0.1, one epoch);
   ``trl``: TRL's ``DPOTrainer`` from the same merged SFT model with the same LoRA, batch,
   rate, β and epochs, its reference the adapter switched off as well; TRL defaults
   otherwise (gradient checkpointing, padded batches, full logits), in the precision
   dialogtune's ``train.precision=auto`` picks here. SmolLM2's template ignores ``tools``,
   so TRL gets the built-in tool format dialogtune renders (``encode.tools.builtin_messages``).

Both DPO models are scored by the same code: held-out preference accuracy (the DPO margin
vs. the SFT model, ``evaluate.preference.score_pairs``) and the chat metrics of step 1.
Throughput: tokens fed (chosen and rejected sequences, prompt included, no padding: the
same count for both systems, TRL's ``num_tokens``) per second of the training loop;
dialogtune computes a pair's context once (``tokens_computed``). Peak memory: each
system's process RSS high-water mark, read when training ends.
Targets (issue 16): hallucinated_value_rate >= 30 % lower than SFT's, perplexity <= 5 %
higher, preference accuracy >= 0.9, >= 1.5x TRL's tokens/s at <= its peak memory.
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

from chat_sft_sgd import count_batches, peak_rss_mib
from machine import machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DOMAIN = "sgd_banks_tools"
SYSTEMS = ("sft", "dialogtune", "trl")
BETA = 0.1


def split_file(args, split: str) -> Path:
    """The (limited) split as a chat JSONL file in the work folder."""
    from dialogtune.data.formats import read_dialogues
    from dialogtune.data.formats.dialogue import dialogue_to_chat_json

    path = args.workdir / f"{split}.jsonl"
    if not path.exists():
        dialogues = read_dialogues(args.data_root / DOMAIN / f"{split}.jsonl")
        limit = args.limit_train if split == "train" else args.limit_test
        dialogues = dialogues[:limit] if limit else dialogues
        path.write_text("".join(json.dumps(dialogue_to_chat_json(d)) + "\n"
                                for d in dialogues), encoding="utf-8")
    return path


def chat_metrics(predictor, args) -> dict:
    from dialogtune.data.formats import read_dialogues
    from dialogtune.evaluate.chat import evaluate_predictor
    from dialogtune.tasks import get_task

    max_length = get_task("chat").defaults["data"]["max_length"]
    metrics, _, _ = evaluate_predictor(predictor, read_dialogues(split_file(args, "test")),
                                       max_length, args.generate_turns, args.max_new_tokens)
    return metrics


def train_overrides(args) -> list[str]:
    out = [f"train.num_threads={args.threads}", "train.save_every_steps=0"]
    return out + ([f"train.max_steps={args.max_steps}"] if args.max_steps else [])


def run_sft(args) -> dict:
    from dialogtune.config import load_config
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.pipeline import train_run

    summary = train_run(load_config(None, train_overrides(args), task="chat",
                                    output=str(args.workdir / "sft"),
                                    **{"data.train": str(split_file(args, "train")),
                                       "model.name": "smollm2"}))
    return {"peak_rss_mib": peak_rss_mib(), "train_seconds": summary["train_seconds"],
            "tokens_fed": summary["tokens_fed"], "steps": summary["steps"],
            "precision": summary["precision"], "eval": chat_metrics(ChatPredictor.from_run(args.workdir / "sft"), args)}


def run_dialogtune(args) -> dict:
    from dialogtune.config import load_config
    from dialogtune.evaluate.preference import evaluate_preference
    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.pipeline import train_run

    run = args.workdir / "dpo"
    summary = train_run(load_config(None, train_overrides(args) + args.dialogtune_set,
                                    task="preference",
                                    output=str(run),
                                    **{"data.train": str(args.workdir / "pairs_train.jsonl"),
                                       "model.name": str(args.workdir / "sft"),
                                       "train.method": "dpo", "train.lr": args.lr,
                                       "train.sft_weight": args.sft_weight}))
    result = {"peak_rss_mib": peak_rss_mib(), "train_seconds": summary["train_seconds"],
              "tokens_fed": summary["tokens_fed"], "tokens_computed": summary["tokens_computed"],
              "steps": summary["steps"], "precision": summary["precision"]}
    preference = evaluate_preference(run, str(args.workdir / "pairs_test.jsonl"),
                                     args.workdir / "dpo_pref.json", False)
    result["eval"] = {**chat_metrics(ChatPredictor.from_run(run), args),
                      **{k: preference[k] for k in ("preference_accuracy", "mean_margin", "pairs")}}
    return result


def trl_rows(path: Path) -> list[dict]:
    """TRL's conversational DPO rows, in the built-in tool format dialogtune renders."""
    from dialogtune.data.encode.chat import dialogue_tools, message_dicts
    from dialogtune.data.encode.tools import builtin_messages
    from dialogtune.data.formats.preference import read_preferences

    rows = []
    for record in read_preferences(path).preferences:
        tools = dialogue_tools(record.chosen)
        chosen = builtin_messages(message_dicts(record.chosen), tools)
        rejected = builtin_messages(message_dicts(record.rejected), tools)
        rows.append({"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]})
    return rows


def held_out_accuracy(model, tokenizer, args) -> dict:
    """DPO margins of ``model`` (a peft model: its reference is the adapter off)."""
    from dialogtune.data.encode.preference import encode_preferences
    from dialogtune.data.formats.preference import read_preferences
    from dialogtune.evaluate.preference import preference_metrics, score_pairs
    from dialogtune.models.preference import METHODS

    records = read_preferences(args.workdir / "pairs_test.jsonl").preferences
    items, _ = encode_preferences(tokenizer, records, 2048)
    margins, _ = score_pairs(model, items, METHODS["dpo"], BETA, tokenizer.pad_token_id or 0)
    return preference_metrics(margins)


def run_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from dialogtune.inference.chat import ChatPredictor
    from dialogtune.inference.chat_run import load_chat_run
    from dialogtune.precision import resolve_precision

    model, tokenizer, _, _ = load_chat_run(args.workdir / "sft", merge=True)
    config = DPOConfig(output_dir=str(args.workdir / "trl"), num_train_epochs=1,
                       learning_rate=args.lr, per_device_train_batch_size=4, use_cpu=True,
                       bf16=resolve_precision("auto") == "bf16", max_length=2048, beta=BETA,
                       save_strategy="no", report_to=[], logging_steps=10, seed=42,
                       # TRL's "sft" loss: the chosen tokens' mean NLL, as train.sft_weight's
                       **({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, args.sft_weight]}
                          if args.sft_weight else {}),
                       max_steps=args.trl_max_steps or args.max_steps or -1)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=config, processing_class=tokenizer, peft_config=lora,
                         train_dataset=Dataset.from_list(trl_rows(args.workdir / "pairs_train.jsonl")))
    seen = count_batches(trainer)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    output = trainer.train()
    result = {"peak_rss_mib": peak_rss_mib(), "train_seconds": time.perf_counter() - started,
              "tokens_fed": seen["tokens"], "steps": output.global_step,
              "precision": "bf16" if trainer.args.bf16 else "fp32"}
    accuracy = held_out_accuracy(trainer.model, tokenizer, args)
    merged = trainer.model.merge_and_unload().eval()
    result["eval"] = {**chat_metrics(ChatPredictor(merged, tokenizer, "trl"), args), **accuracy}
    return result


def worker(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    runner = {"sft": run_sft, "dialogtune": run_dialogtune, "trl": run_trl}[args.worker]
    Path(args.result).write_text(json.dumps(runner(args)), encoding="utf-8")
    return 0


def spawn(args, system: str) -> dict:
    result = args.workdir / f"{system}_result.json"
    if args.reuse and result.exists():
        print(f"{system}: reusing {result}", flush=True)
        return json.loads(result.read_text())
    forwarded = ["--data-root", str(args.data_root), "--threads", str(args.threads),
                 "--generate-turns", str(args.generate_turns), "--max-new-tokens",
                 str(args.max_new_tokens), "--lr", str(args.lr), "--workdir", str(args.workdir),
                 "--sft-weight", str(args.sft_weight)]
    forwarded += [f"--dialogtune-set={item}" for item in args.dialogtune_set]
    for flag, value in (("--limit-train", args.limit_train), ("--limit-test", args.limit_test),
                        ("--max-steps", args.max_steps), ("--trl-max-steps", args.trl_max_steps)):
        forwarded += [flag, str(value)] if value else []
    print(f"{system} ...", flush=True)
    subprocess.run([sys.executable, __file__, "--worker", system, "--result", str(result),
                    *forwarded], check=True)
    return json.loads(result.read_text())


def make_pairs(args) -> dict:
    """Step 2: training and held-out pairs, facts corrupted (seed 0)."""
    from dialogtune.data.transform.preferences import make_preferences

    made = {}
    for split in ("train", "test"):
        out = make_preferences(split_file(args, split), args.workdir / f"pairs_{split}.jsonl")
        made[split] = {"pairs": out.rows, "turns": out.turns, "skipped": out.skipped}
    return made


def _value(result: dict, key: str):
    metrics = result["eval"]
    return (metrics.get("grounding") or {}).get(key) if key == "hallucinated_value_rate" \
        else metrics.get(key)


def report(results: dict) -> str:
    """A markdown table of the systems run, then the targets' ratios."""
    systems = [s for s in SYSTEMS if s in results]
    rows = ["| | " + " | ".join(systems) + " |", "|---|" + "---|" * len(systems)]
    for key in ("preference_accuracy", "mean_margin", "hallucinated_value_rate", "perplexity",
                "bleu", "generated_turns"):
        cells = [_value(results[s], key) for s in systems]
        rows.append(f"| {key} | " + " | ".join(
            "n/a" if c is None else f"{c:.3f}" if isinstance(c, float) else str(c)
            for c in cells) + " |")
    speed = {s: results[s]["tokens_fed"] / max(results[s]["train_seconds"], 1e-9)
             for s in systems}
    rows.append("| tokens fed / s | " + " | ".join(f"{speed[s]:.1f}" for s in systems) + " |")
    for key in ("train_seconds", "tokens_fed", "steps", "peak_rss_mib"):
        rows.append(f"| {key} | " + " | ".join(f"{results[s][key]:.0f}" for s in systems) + " |")
    rows.append("| precision | " + " | ".join(results[s].get("precision", "?") for s in systems) + " |")
    if "dialogtune" not in results:
        return "\n".join(rows)
    sft, ours = results["sft"], results["dialogtune"]
    rows += ["", f"dialogtune computed {ours.get('tokens_computed', 0)} of the {ours['tokens_fed']} "
             "tokens fed (a pair's context once)"]
    if "trl" in results:
        rows.append(f"dialogtune / TRL tokens per second: "
                    f"{speed['dialogtune'] / max(speed['trl'], 1e-9):.2f}x; peak memory "
                    f"{ours['peak_rss_mib']:.0f} vs {results['trl']['peak_rss_mib']:.0f} MiB")
    before, after = _value(sft, "hallucinated_value_rate"), _value(ours, "hallucinated_value_rate")
    if before and after is not None:
        rows.append(f"hallucinated_value_rate: {100 * (before - after) / before:.0f} % lower than SFT")
    rows.append(f"perplexity: {100 * (_value(ours, 'perplexity') / _value(sft, 'perplexity') - 1):+.1f} % vs SFT")
    return "\n".join(rows)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--limit-train", type=int, default=None, help="training dialogues")
    parser.add_argument("--limit-test", type=int, default=None, help="test dialogues")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--trl-max-steps", type=int, default=None,
                        help="stop TRL after N steps: its tokens/s and memory on the same "
                             "pairs in a fraction of its (~5x longer) time; its quality "
                             "figures then describe that partial run")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the systems whose result file the work folder already holds")
    parser.add_argument("--generate-turns", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=None,
                        help="DPO rate for both systems (default: dialogtune's)")
    parser.add_argument("--sft-weight", type=float, default=None,
                        help="the chosen replies' NLL weight for both systems (dialogtune's "
                             "train.sft_weight, TRL's 'sft' loss term; default: dialogtune's)")
    parser.add_argument("--dialogtune-set", action="append", default=[], metavar="KEY=VALUE",
                        help="more settings for dialogtune's DPO run (repeatable), e.g. "
                             "train.gradient_checkpointing=true")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS[1:], default=list(SYSTEMS[1:]),
                        help="the DPO systems to run (default both; the SFT run always)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lr is None:
        from dialogtune.tasks import get_task

        args.lr = get_task("preference").defaults["train"]["lr"]
    if args.sft_weight is None:
        from dialogtune.models.preference import METHODS

        args.sft_weight = METHODS["dpo"].sft_weight
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        return worker(args)
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="preference_bench_"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(args.threads), "workdir": str(args.workdir),
               "sft_weight": args.sft_weight, "dialogtune_set": args.dialogtune_set,
               "limits": {"train": args.limit_train, "test": args.limit_test,
                          "max_steps": args.max_steps, "trl_max_steps": args.trl_max_steps,
                          "generate_turns": args.generate_turns}}
    print(json.dumps(results["machine"]), flush=True)
    results["sft"] = spawn(args, "sft")
    results["pairs"] = make_pairs(args)
    print(json.dumps(results["pairs"]), flush=True)
    for system in args.systems:
        results[system] = spawn(args, system)
    print(report(results), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
