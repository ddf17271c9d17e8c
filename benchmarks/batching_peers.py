"""Batched chat generation without the server: transformers' own continuous batching vs
dialogtune's step-level batching vs one prompt at a time, on the same prompts.

run: flock /tmp/dialogtune-bench.lock .venv/bin/python benchmarks/batching_peers.py \
         [--prompts 8] [--max-tokens 16] [--threads 2]

SmolLM2-135M-Instruct (the embedded ``smollm2``), greedy, the prompts of
``examples/intents_test.csv`` through the chat template. Three ways, each timed after one
untimed warm-up, the three in turns ``--rounds`` times (the median round is reported: on a
shared machine other jobs come and go): ``generate`` one prompt after another (what the
one-at-a-time server worker does); ``model.generate_batch`` (transformers' continuous
batching with paged attention; its warm-up included in its own call, as a server would pay
it once); ``BatchedGenerator`` with every prompt submitted at once. Prints generated
tokens/s of each and whether their tokens equal the one-at-a-time ones; writes
``batching_peers_results.json`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

HERE = Path(__file__).resolve().parent


def one_at_a_time(chat, prompts, max_tokens):
    import torch

    replies = []
    for ids in prompts:
        with torch.no_grad():
            replies.append(chat._generate_ids(torch.tensor([ids]), max_tokens, 0.0, 1.0, None))
    return replies


def transformers_batch(chat, prompts, max_tokens):
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_tokens, do_sample=False,
                              eos_token_id=chat.stop_ids, pad_token_id=chat.tokenizer.pad_token_id)
    outputs = chat.model.generate_batch(prompts, generation_config=config,
                                        max_new_tokens=max_tokens)
    replies = [list(out.generated_tokens) for out in outputs.values()]
    return [r[:-1] if r and r[-1] in chat.stop_ids else r for r in replies]


def dialogtune_batch(chat, prompts, max_tokens):
    import torch

    from dialogtune.inference.batching import BatchedGenerator

    batcher, replies = BatchedGenerator(chat.model, chat.tokenizer, chat.stop_ids,
                                        len(prompts)), [None] * len(prompts)

    def run(i):
        pieces = batcher.stream(torch.tensor([prompts[i]]), max_tokens)
        replies[i] = "".join(pieces)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    return replies, batcher.tokens


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    from dialogtune.inference.chat import ChatPredictor
    from serve_load import intent_texts

    torch.set_num_threads(args.threads)
    chat = ChatPredictor.load("smollm2")
    texts = intent_texts()[:args.prompts]
    prompts = [chat.prompt_ids([{"role": "user", "content": t}])[0].tolist() for t in texts]
    one_at_a_time(chat, prompts[:1], 2)  # warm-ups
    dialogtune_batch(chat, prompts[:2], 2)
    def text(ids):
        return chat.tokenizer.decode(ids, skip_special_tokens=True)

    ways = {"one_at_a_time": one_at_a_time, "transformers_generate_batch": transformers_batch,
            "dialogtune_batched": dialogtune_batch}
    runs: dict[str, list] = {name: [] for name in ways}  # (texts, tokens, seconds) a round
    for _ in range(args.rounds):  # in turns: other jobs on the machine weigh on all alike
        for name, way in ways.items():
            try:
                out, seconds = timed(way, chat, prompts, args.max_tokens)
            except Exception as exc:  # reported, not fatal: the comparison is the point
                print(f"{name} failed: {exc!r}")
                continue
            texts_, tokens = (out[0], out[1]) if name == "dialogtune_batched" else \
                ([text(i) for i in out], sum(map(len, out)))
            runs[name].append((texts_, tokens, seconds))
    reference = runs["one_at_a_time"][0][0]
    results = {"machine": machine(args.threads), "prompts": len(prompts),
               "max_tokens": args.max_tokens, "rounds": args.rounds, "rows": {}}
    for name, rounds in runs.items():
        if not rounds:
            continue
        replies, tokens, _ = rounds[0]
        seconds = sorted(r[2] for r in rounds)[len(rounds) // 2]  # the median round
        same = sum(r == ref for r, ref in zip(replies, reference))
        results["rows"][name] = {"seconds_median": round(seconds, 2),
                                 "seconds_each_round": [round(r[2], 2) for r in rounds],
                                 "generated_tokens": tokens,
                                 "tokens_per_s": round(tokens / seconds, 2),
                                 "replies_equal_one_at_a_time": f"{same}/{len(reference)}"}
        print(f"{name:28} {tokens:4d} tokens {seconds:7.2f} s {tokens / seconds:7.2f} tok/s "
              f"(median of {len(rounds)}) equal to one-at-a-time: {same}/{len(reference)}",
              flush=True)
    (HERE / "batching_peers_results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
