"""Constrained tool-call decoding on CPU: what each library costs on the embedded model.

SmolLM2-135M (the ``smollm2`` alias, 49,152 tokens) writes a TransferMoney / CheckBalance
call for a banking request. The same greedy loop (one forward per token, KV cache) runs
unconstrained and under each library's mask for the call's JSON body (``{"name", "arguments"}``,
name one of the two functions, arguments their closed SGD schemas, prompt ending in
``<tool_call>``): llguidance, lm-format-enforcer, xgrammar, outlines-core (the engine of
outlines). Then dialogtune's own path (``ChatPredictor.call_constraint``: llguidance, the
whole reply's grammar) for ``tool_choice="required"`` and, in words, ``"auto"``.

Printed per variant: one-off set-up (the library's view of the tokenizer), grammar compile
time, tokens, mask time per token (compute + apply + advance), forward time per token, and
whether the output parses and passes ``call_problems``. Holds /tmp/dialogtune-bench.lock
while measuring, so other benchmarks do not share the CPU. Usage:

    python benchmarks/tools_decoding.py [--threads 1] [--tokens 48] [--json out.json]

INSTALL (the peers; a library that is missing is skipped): ``pip install
lm-format-enforcer==0.11.3 outlines-core==0.2.14`` and ``pip install --no-deps
xgrammar==0.2.9 apache-tvm-ffi==0.1.15.post2`` (xgrammar's own dependencies add triton,
which a CPU run does not use).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import time
from contextlib import contextmanager

LOCK = "/tmp/dialogtune-bench.lock"
_ACCOUNT = {"type": "string", "enum": ["checking", "savings"]}
BANK_TOOLS = [  # SGD Banks_1's functions, as ../shared/data/sgd_banks_tools writes them
    {"type": "function", "function": {
        "name": "CheckBalance", "description": "Check the amount of money in a user's account",
        "parameters": {"type": "object", "properties": {"account_type": _ACCOUNT},
                       "required": ["account_type"]}}},
    {"type": "function", "function": {
        "name": "TransferMoney", "description": "Transfer money to another user's account",
        "parameters": {"type": "object", "properties": {
            "account_type": _ACCOUNT, "amount": {"type": "string"},
            "recipient_account_name": {"type": "string"},
            "recipient_account_type": _ACCOUNT},
            "required": ["account_type", "amount", "recipient_account_name"]}}}]
MESSAGES = [{"role": "user", "content": "Please send $250 from my checking account to "
                                        "Amir's savings account."}]


@contextmanager
def bench_lock():
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def body_schema(tools) -> dict:
    """The call body every library enforces: one of the functions, closed arguments."""
    from dialogtune.data.tool_calls import function_specs
    from dialogtune.inference.tool_decoding import closed_schema

    return {"anyOf": [{"type": "object", "properties": {
        "name": {"enum": [name]}, "arguments": closed_schema(spec["parameters"])},
        "required": ["name", "arguments"], "additionalProperties": False}
        for name, spec in function_specs(tools).items()]}


def greedy(model, ids, processor, max_tokens: int, stops: list[int]) -> dict:
    """Greedy decoding from ``ids`` (KV cache), timing forwards and the processor apart."""
    import torch

    generated, forward_s, mask_s, steps = [], 0.0, 0.0, 0
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        for _ in range(max_tokens):
            scores, steps = out.logits[:, -1].float().clone(), steps + 1
            if processor is not None:
                started = time.perf_counter()
                seen = torch.cat([ids, torch.tensor([generated], dtype=ids.dtype)], 1)
                scores = processor(seen, scores)
                mask_s += time.perf_counter() - started
            token = int(scores.argmax())
            if token in stops:
                break
            generated.append(token)
            started = time.perf_counter()
            cache = getattr(out, "cache", None) or out.past_key_values
            out = model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True)
            forward_s += time.perf_counter() - started
    return {"tokens": len(generated), "steps": steps, "ids": generated,
            "forward_ms_per_token": round(1000 * forward_s / max(1, len(generated)), 2),
            "mask_ms_per_token": round(1000 * mask_s / steps, 3) if processor else 0.0}


def call_check(text: str, body_only: bool) -> dict:
    """Whether ``text`` (a call body, or a whole reply) holds calls that parse and fit."""
    from dialogtune.data.tool_calls import (ToolCall, call_problems, function_specs,
                                            parse_reply)

    specs = function_specs(BANK_TOOLS)
    try:
        calls = ([ToolCall(**json.loads(text))] if body_only else parse_reply(text).calls)
    except (ValueError, TypeError) as exc:
        return {"valid": False, "problem": str(exc)[:80]}
    problems = [p for c in calls for p in call_problems(c, specs)]
    return {"valid": bool(calls) and not problems, "problem": "; ".join(problems)[:80]}


def library_row(name: str, model, tokenizer, ids, args, stops) -> dict:
    """Set up, compile and run one library on the call body."""
    from decoding_peers import LIBRARIES

    library, vocab = LIBRARIES[name](), model.config.vocab_size
    started = time.perf_counter()
    try:
        library.setup(tokenizer, vocab, stops)
    except ImportError as exc:
        return {"variant": name, "skipped": f"not installed ({exc}); see INSTALL"}
    setup_s = time.perf_counter() - started
    compile_ms = []
    for _ in range(2):  # the second compile shows what a per-request cache would save
        started = time.perf_counter()
        processor = library.compile(body_schema(BANK_TOOLS))
        compile_ms.append(round(1000 * (time.perf_counter() - started), 1))
    run = greedy(model, ids, processor, args.tokens, stops)
    text = tokenizer.decode(run.pop("ids"))
    return {"variant": name, "setup_s": round(setup_s, 2), "compile_ms": compile_ms, **run,
            **call_check(text, body_only=True), "text": text}


def product_rows(predictor, ids, args) -> list[dict]:
    """dialogtune's own path: the whole reply's grammar, required (a call) and auto."""
    rows = []
    for choice in ("required", "auto"):
        started = time.perf_counter()
        constraint = predictor.call_constraint(BANK_TOOLS, choice)
        first_ms = 1000 * (time.perf_counter() - started)  # 'required' builds the trie too
        run = greedy(predictor.model, ids, constraint, args.tokens, predictor.stop_ids)
        text = predictor.tokenizer.decode(run.pop("ids"))
        rows.append({"variant": f"dialogtune tool_choice={choice}",
                     "compile_ms": [round(first_ms, 1)], **run,
                     **call_check(text, body_only=False), "text": text})
    return rows


def sampled_row(predictor, args) -> dict:
    """``respond`` itself (transformers' generate + the constraint), sampling: how many
    replies under ``tool_choice="required"`` hold only calls that parse and fit."""
    from dialogtune.data.tool_calls import call_problems, function_specs

    specs, counts = function_specs(BANK_TOOLS), {"replies": 0, "valid": 0, "calls": 0,
                                                  "cut_by_token_limit": 0}
    started = time.perf_counter()
    for seed in range(args.samples):
        reply = predictor.respond(MESSAGES, BANK_TOOLS, max_new_tokens=args.tokens,
                                  temperature=1.0, seed=seed, tool_choice="required")
        counts["replies"] += 1
        counts["calls"] += len(reply.calls)
        counts["cut_by_token_limit"] += len(reply.invalid)
        counts["valid"] += bool(reply.calls) and not any(call_problems(c, specs)
                                                         for c in reply.calls)
    seconds = time.perf_counter() - started
    return {"variant": "dialogtune respond, required, temperature 1.0", **counts,
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 1 by default: on a CPU shared with other jobs, 2 threads measured 548 ms per forward
    # against 67 ms for 1 (OpenMP threads waiting on each other); the masks use one thread
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--libraries", nargs="*", default=["llguidance", "lm-format-enforcer",
                                                           "xgrammar", "outlines-core"])
    parser.add_argument("--samples", type=int, default=10, help="sampled respond() calls")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from machine import machine

    from dialogtune.inference.chat import ChatPredictor

    torch.set_num_threads(args.threads)
    predictor = ChatPredictor.from_model("smollm2")
    model, tokenizer, stops = predictor.model, predictor.tokenizer, predictor.stop_ids
    ids = predictor.prompt_ids(MESSAGES, 0, BANK_TOOLS)
    opened = torch.cat([ids, torch.tensor([tokenizer("<tool_call>")["input_ids"]])], 1)
    results = {"machine": machine(args.threads), "prompt_tokens": int(ids.shape[1]), "rows": []}
    print(json.dumps(results["machine"]), f"prompt {ids.shape[1]} tokens", flush=True)
    with bench_lock():
        base = greedy(model, opened, None, args.tokens, stops=[])
        base.pop("ids")
        rows = [{"variant": "unconstrained greedy", **base}]
        print(json.dumps(rows[0]), flush=True)
        for name in args.libraries:
            rows.append(library_row(name, model, tokenizer, opened, args, stops))
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
        for row in product_rows(predictor, ids, args) + [sampled_row(predictor, args)]:
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    results["rows"] = rows
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
