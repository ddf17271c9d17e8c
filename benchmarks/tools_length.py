"""How long tool-calling dialogues get, and what a length cut drops, per rendering.

The issue behind it: with the tool list in a system turn and results as their own turns,
dialogues of this kind lost many assistant turns to the chat task's 1,024-token cut. Three
answers were proposed: render the tools compactly, keep only the results the next reply
needs, or raise the limit where memory allows. This measures each, with the SmolLM2
tokenizer and chat template (the ``smollm2`` alias; no model is loaded), on the training
splits of ``sgd_banks_tools`` and ``sgd_restaurants_tools``:

- tool block: tokens of the system turn's tool list (``openai``: each tool as
  ``json.dumps`` writes the OpenAI object, as tool-rendering templates print it; ``full``:
  ``encode.tools.tool_lines(detail="full")``, the function objects without JSON's spaces;
  ``compact``: ``tool_lines(detail="compact")``), per dialogue and per function;
- results: ``raw`` (as the data holds them), ``compact`` (``compact_result``: JSON
  without optional spaces, lossless), ``stub`` (compact, and a result already answered by
  an assistant reply replaced by a short stub in the context of every later turn);
- per rendering: mean / p95 / max tokens of a whole dialogue, and the assistant turns and
  whole dialogues the chat encoder (``encode_dialogues``) drops at max_length 1024 / 1536
  / 2048. ``stub`` changes the context per turn, so it cannot be one training sequence:
  its drops count each turn's own context (``messages[:i+1]``, stubs applied) against
  the limit, and its "fed" column is the tokens one sequence per turn would feed.

    python benchmarks/tools_length.py [--data-root ../shared/data] [--json out.json]
    python benchmarks/tools_length.py --memory   # + peak RSS of one LoRA step per limit

Token counting only: no timing, so the shared-machine lock is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DOMAINS = ("sgd_banks_tools", "sgd_restaurants_tools")
LIMITS = (1024, 1536, 2048)
TOOLS = ("openai", "full", "compact")
RESULTS = ("raw", "compact", "stub")
STUB = "(answered above)"


def tool_block(tools, mode: str) -> str:
    """The system turn's tool list in ``mode``."""
    from dialogtune.data.encode.tools import TOOLS_INTRO, tool_lines

    if mode == "openai":
        lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    else:
        lines = tool_lines(tools, mode)
    return f"{TOOLS_INTRO}\n{lines}"


def answered(messages: list[dict], upto: int) -> set[int]:
    """Indexes of tool results before ``upto`` that an assistant reply (words, not a call)
    already followed: the reply that needed them has been given."""
    done, waiting = set(), []
    for i, message in enumerate(messages[:upto]):
        if message["role"] == "tool":
            waiting.append(i)
        elif message["role"] == "assistant" and not message.get("tool_calls") and waiting:
            done.update(waiting)
            waiting = []
    return done


def variant_messages(messages: list[dict], tools, tools_mode: str, results: str,
                     upto: int | None = None) -> list[dict]:
    """``encode.tools.builtin_messages`` with the tool block and results as the variant
    says (``upto``: the turn whose context this is, for stubs)."""
    from dialogtune.data.encode.tools import compact_result
    from dialogtune.data.tool_calls import calls_from_openai

    stubbed = answered(messages, len(messages) if upto is None else upto) \
        if results == "stub" else set()
    out = []
    if tools:
        block = tool_block(tools, tools_mode)
        if messages and messages[0]["role"] == "system":
            block = f"{messages[0]['content']}\n\n{block}"
            messages = messages[1:]
            stubbed = {i - 1 for i in stubbed}
        out.append({"role": "system", "content": block})
    for i, message in enumerate(messages):
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            calls = [c.to_text() for c in calls_from_openai(message["tool_calls"])]
            content = "\n".join(([content.strip()] if content.strip() else []) + calls)
        elif role == "tool":
            content = STUB if i in stubbed else (
                content if results == "raw" else compact_result(content))
        out.append({"role": role, "content": content})
    return out


def use_variant(tools_mode: str, results: str) -> None:
    """Make the chat encoder render the built-in format as the variant says (the encoder
    looks ``builtin_messages`` up at call time)."""
    from dialogtune.data.encode import tools as tools_module

    tools_module.builtin_messages = (
        lambda messages, tools, detail="compact": variant_messages(messages, tools,
                                                                   tools_mode, results))


def stats(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": round(float(values.mean()), 1),
            "p95": round(float(np.percentile(values, 95)), 1), "max": int(values.max())}


def sequence_variant(tokenizer, dialogues, tools_mode: str, results: str) -> dict:
    """Whole-dialogue lengths and the encoder's drops, one sequence per dialogue."""
    from dialogtune.data.encode.chat import encode_dialogue

    use_variant(tools_mode, results)
    lengths = [len(encode_dialogue(tokenizer, d)[0].input_ids) for d in dialogues]
    out = {"tokens": stats(lengths), "fed": int(sum(lengths)), "cut": {}}
    for limit in LIMITS:
        drops = [encode_dialogue(tokenizer, d, limit) for d in dialogues]
        out["cut"][limit] = {"turns": sum(n for _, n in drops),
                             "dialogues": sum(1 for e, _ in drops if e is None),
                             "dialogues_cut": sum(1 for _, n in drops if n)}
    return out


def turn_lengths(tokenizer, dialogue, tools_mode: str) -> list[int]:
    """Tokens of each assistant turn's own context, stubs applied (``stub`` variant)."""
    from dialogtune.data.encode.chat import message_dicts

    messages, tools = message_dicts(dialogue), dialogue.extra.get("tools")
    lengths = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        plain = variant_messages(messages[:i + 1], tools, tools_mode, "stub", upto=i)
        text = tokenizer.apply_chat_template(plain, tokenize=False)
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return lengths


def stub_variant(tokenizer, dialogues, tools_mode: str) -> dict:
    per_dialogue = [turn_lengths(tokenizer, d, tools_mode) for d in dialogues]
    out = {"tokens": stats([max(t) for t in per_dialogue]),
           "fed": int(sum(sum(t) for t in per_dialogue)), "cut": {}}
    for limit in LIMITS:
        out["cut"][limit] = {
            "turns": sum(sum(1 for n in t if n > limit) for t in per_dialogue),
            "dialogues": sum(1 for t in per_dialogue if all(n > limit for n in t)),
            "dialogues_cut": sum(1 for t in per_dialogue if any(n > limit for n in t))}
    return out


def tool_block_tokens(tokenizer, dialogues) -> dict:
    """Tokens of the tool list per dialogue and per function, for each tools mode."""
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa
    out = {}
    for mode in TOOLS:
        blocks = [count(tool_block(d.extra["tools"], mode)) for d in dialogues]
        functions = [count(tool_block([t], mode)) - count(tool_block([], mode))
                     for d in dialogues for t in d.extra["tools"]]
        out[mode] = {"block": stats(blocks), "per_function": stats(functions)}
    return out


def measure_domain(tokenizer, path: Path) -> dict:
    from dialogtune.data.formats import read_dialogues

    dialogues = read_dialogues(path)
    turns = sum(1 for d in dialogues for m in d.messages if m.role == "assistant")
    out = {"dialogues": len(dialogues), "assistant_turns": turns,
           "tool_block": tool_block_tokens(tokenizer, dialogues), "variants": {}}
    for tools_mode in TOOLS:
        for results in RESULTS:
            name = f"tools {tools_mode}, results {results}"
            out["variants"][name] = (stub_variant(tokenizer, dialogues, tools_mode)
                                     if results == "stub" else
                                     sequence_variant(tokenizer, dialogues, tools_mode, results))
            print(f"  {name}: {json.dumps(out['variants'][name])}", flush=True)
    return out


MEMORY_STEP = """
import resource, sys, torch
from dialogtune.models.lm import load_lm, lm_loss
from dialogtune.config import load_config
from dialogtune.tasks.steps import adapt_model
from dialogtune.strategies import CAUSAL_LM
n = int(sys.argv[1])
torch.set_num_threads(1)
cfg = load_config(None, None, task="chat").resolved()
model, tokenizer, _ = load_lm("smollm2")
model, _, _ = adapt_model(model, cfg, CAUSAL_LM)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from dialogtune.data.encode.chat import EncodedDialogue
from dialogtune.data.encode.chat_batches import pack_sequences
ids = torch.randint(0, len(tokenizer), (n,)).tolist()
labels = [-100] * (n // 2) + ids[n // 2:]  # half trained, as tool dialogues roughly are
batch = pack_sequences([EncodedDialogue(ids, labels)])  # the training loop's own batch
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
loss = lm_loss(model, batch)
loss.backward(); optimizer.step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{n} {base / 2**20:.2f} {peak / 2**20:.2f}")
"""


def step_memory(length: int) -> dict:
    """Peak resident memory (GiB) of a fresh process doing one LoRA step (chat defaults,
    one thread) on one sequence of ``length`` tokens, half of them trained, batched as
    training batches it; and the same process's peak before the step."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    result = subprocess.run([sys.executable, "-c", MEMORY_STEP, str(length)], env=env,
                            capture_output=True, text=True, check=True)
    _, before, peak = result.stdout.split()[-3:]
    return {"tokens": length, "rss_before_gib": float(before), "peak_rss_gib": float(peak)}


def markdown(results: dict) -> str:
    lines = ["| domain | rendering | tokens mean / p95 / max | tokens fed | "
             + " | ".join(f"dropped at {n}: turns (dialogues cut / lost)" for n in LIMITS)
             + " |", "|---|---|---|---|" + "---|" * len(LIMITS)]
    for domain, found in results["domains"].items():
        for name, v in found["variants"].items():
            t = v["tokens"]
            cuts = " | ".join(f"{c['turns']} ({c['dialogues_cut']} / {c['dialogues']})"
                              for c in v["cut"].values())
            lines.append(f"| {domain} | {name} | {t['mean']:g} / {t['p95']:g} / {t['max']} | "
                         f"{v['fed']:,} | {cuts} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--memory", action="store_true",
                        help="also measure one LoRA step's peak memory at each limit")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import cpu_model
    from dialogtune.models.loading import load_tokenizer, resolve_source

    tokenizer = load_tokenizer(resolve_source("smollm2"))
    results = {"cpu": cpu_model(), "tokenizer": "smollm2", "domains": {}}
    for domain in DOMAINS:
        print(domain, flush=True)
        results["domains"][domain] = measure_domain(tokenizer,
                                                    args.data_root / domain / "train.jsonl")
        print(json.dumps(results["domains"][domain]["tool_block"]), flush=True)
    if args.memory:
        results["memory"] = [step_memory(n) for n in LIMITS]
        for row in results["memory"]:
            print(f"one LoRA step, {row['tokens']} tokens: peak RSS {row['peak_rss_gib']} GiB "
                  f"({row['rss_before_gib']} GiB before the step)")
    print(markdown(results))
    print(f"cpu: {results['cpu']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
