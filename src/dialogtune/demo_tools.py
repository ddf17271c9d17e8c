"""The tool half of ``make demo``: the embedded SmolLM2 learns to call the support desk's
backend and to answer from what it returns.

LoRA on the example tool dialogues (``examples/tools_train.jsonl``, one dialogue per step),
then, for held-out questions (``examples/tools_test.jsonl``, worded unlike anything
trained on): the call the tuned model makes, the result of :func:`backend` (a fake backend
whose values the model has never seen), the reply the model writes from that result, and
whether the reply states the result's values. The untuned model gets the same question
and tool list for contrast.

48 steps: 142–157 s of training, 172–181 s for this part on the shared 2-core machine
(benchmarks/RESULTS.md, "Tool demo", with the whole held-out set's numbers).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from pathlib import Path

from .demo_chat import example_file, train_demo_run
from .resources import available_threads

TRAIN_STEPS = 48  # dialogues trained on (of 120): RESULTS.md weighs time against 64
SHOWN_TOOLS = ("get_balance", "get_data_usage")  # one held-out question for each
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def backend(name: str, arguments: dict) -> dict:
    """The fake support backend: fixed values derived from the arguments by a checksum, so
    one question always gets the same answer and no answer was in the training data."""
    key = zlib.crc32(json.dumps([name, arguments], sort_keys=True).encode())
    day = f"{MONTHS[key % 12]} {key % 28 + 1}"
    if name == "get_balance":
        return {**arguments, "balance": f"${key % 24000 / 100:.2f}", "due_date": day}
    if name == "get_data_usage":
        allowance = (5, 10, 15, 20, 50)[key % 5]
        return {**arguments, "used": f"{key % (allowance * 10) / 10:g} GB",
                "allowance": f"{allowance} GB", "resets_on": day}
    if name == "check_outage":
        return {**arguments, "status": "outage", "fix_eta": f"{key % 11 + 1}:30 PM"}
    if name == "block_sim":
        return {**arguments, "status": "blocked", "reference": f"BLK-{key % 90000 + 10000}"}
    return {"error": f"no function named {name}"}


def looked_up(result: dict, arguments: dict) -> list[str]:
    """The values a grounded reply must state: what the backend added beyond echoing the
    arguments (its ``status`` word aside)."""
    return [v for k, v in result.items() if k not in arguments and k != "status"]


def calling_turns(dialogues) -> list[tuple[list[dict], list[dict], dict]]:
    """(the dialogue up to a user turn, tools, the reference call) for every user turn the
    reference answers with a call straight away."""
    from .data.encode.chat import dialogue_tools, message_dicts

    found = []
    for dialogue in dialogues:
        messages = message_dicts(dialogue)
        for i in range(1, len(messages) - 1):
            calls = messages[i + 1].get("tool_calls")
            if messages[i]["role"] == "user" and calls:
                found.append((messages[:i + 1], dialogue_tools(dialogue), calls[0]["function"]))
    return found


def held_out_questions(dialogues, wanted: tuple[str, ...] = SHOWN_TOOLS) -> list[tuple]:
    """(system + question, tools) for the first question of each wanted tool that stands
    without the turns before it: it answers no question of the assistant's, and states
    every argument of its call (enums aside: "stolen" is implied, not quoted)."""
    from .data.tool_calls import function_specs

    first = {}
    for messages, tools, call in calling_turns(dialogues):
        before = messages[-2]
        if before["role"] == "assistant" and before["content"].rstrip().endswith("?"):
            continue
        schema = function_specs(tools)[call["name"]]["parameters"].get("properties", {})
        stated = [v for k, v in json.loads(call["arguments"]).items()
                  if "enum" not in schema.get(k, {})]
        if all(str(v) in messages[-1]["content"] for v in stated):
            first.setdefault(call["name"], (messages[:1] + messages[-1:], tools))
    return [first[name] for name in wanted if name in first]


def exchange(predictor, messages: list[dict], tools: list[dict], max_new_tokens: int = 64
             ) -> dict:
    """One question answered with tools: the model's first turn; when it calls, each call's
    schema problems and backend result, then the reply it writes from the results."""
    from .data.tool_calls import call_problems, function_specs

    first = predictor.respond(messages, tools, max_new_tokens=max_new_tokens)
    out = {"said": first.content, "calls": first.calls, "invalid": first.invalid}
    if not first.calls:
        return out
    specs = function_specs(tools)
    results = [backend(call.name, call.arguments) for call in first.calls]
    ids = [call.id or f"call_{i}" for i, call in enumerate(first.calls, 1)]
    follow = messages + [{"role": "assistant", "content": first.content, "tool_calls": [
        call.to_openai(call_id) for call, call_id in zip(first.calls, ids)]}]
    follow += [{"role": "tool", "tool_call_id": call_id, "name": call.name,
                "content": json.dumps(result)}
               for call, call_id, result in zip(first.calls, ids, results)]
    out["problems"] = [p for call in first.calls for p in call_problems(call, specs)]
    out["results"] = results
    second = predictor.respond(follow, tools, max_new_tokens=max_new_tokens)
    out["reply"], out["reply_calls"] = second.content, second.calls
    return out


def grounded(found: dict) -> tuple[int, int]:
    """(values of the results that the reply states, values it should state)."""
    values = [v for call, result in zip(found.get("calls", ()), found.get("results", ()))
              for v in looked_up(result, call.arguments)]
    reply = found.get("reply") or ""
    return sum(1 for v in values if str(v) in reply), len(values)


def _line(text: str, width: int = 160) -> str:
    """Generated text on one line, cut at ``width`` characters."""
    text = " ".join(text.split()) or "(nothing)"
    return text if len(text) <= width else text[:width - 1] + "…"


def _show(who: str, found: dict) -> None:
    if found["said"] or not found["calls"]:
        print(f"    {who} says:  {_line(found['said'])}")
    for text in found["invalid"]:
        print(f"    {who} wrote a call that does not parse: {_line(text, 100)}")
    for call, result in zip(found["calls"], found.get("results", ())):
        print(f"    {who} calls: {call.name}({json.dumps(call.arguments)})")
        print(f"    backend:    {json.dumps(result)}")
    for problem in found.get("problems", ()):
        print(f"    schema problem: {problem}")
    if "reply" in found:
        stated, wanted = grounded(found)
        print(f"    {who} replies: {_line(found['reply'])}")
        for call in found["reply_calls"]:
            print(f"    {who} calls again instead: {call.name}({json.dumps(call.arguments)})")
        print(f"    states {stated} of the {wanted} looked-up values exactly")


def _ask(run: Path, questions: list[tuple]) -> dict[str, list[dict]]:
    """Every question to the tuned run, then to its base model (one model in memory)."""
    from .inference.chat import ChatPredictor

    found = {}
    for who, load in (("tuned", lambda: ChatPredictor.from_run(run)),
                      ("base", lambda: ChatPredictor.from_model("smollm2"))):
        predictor = load()
        found[who] = [exchange(predictor, m, t) for m, t in questions]
        del predictor
    return found


def _headline(found: list[dict]) -> dict:
    stated = [grounded(f) for f in found]
    return {"questions": len(found),
            "valid_calls": sum(1 for f in found if f["calls"] and not f.get("problems")),
            "stated": sum(s for s, _ in stated), "values": sum(n for _, n in stated)}


def run_tools_demo(output_dir: str | Path) -> dict:
    """Train, then question tuned and base model; returns the headline numbers."""
    import torch

    from .data.formats import read_dialogues

    started, threads = time.perf_counter(), available_threads()
    torch.set_num_threads(threads)
    run = Path(output_dir) / "tools_lora"
    print(f"\ntool demo: LoRA on SmolLM2-135M-Instruct, {TRAIN_STEPS} of the 120 example tool "
          f"dialogues (one per step); held out: examples/tools_test.jsonl; {threads} "
          "thread(s)", flush=True)
    summary = train_demo_run(run, threads, "tools_train.jsonl",
                             (f"train.max_steps={TRAIN_STEPS}",))
    print(f"{summary['steps']} steps, {summary['train_seconds']:.0f} s training at "
          f"{summary['tokens_per_second']:.0f} tokens/s")
    questions = held_out_questions(read_dialogues(example_file("tools_test.jsonl")))
    found = _ask(run, questions)
    print("\nheld-out questions, worded unlike any training dialogue; the backend's values "
          "are new to the model")
    for (messages, _), tuned, base in zip(questions, found["tuned"], found["base"]):
        print(f"\n  user: {messages[-1]['content']}")
        _show("tuned", tuned)
        _show("base", base)
    headline, elapsed = _headline(found["tuned"]), time.perf_counter() - started
    print(f"\ntuned: {headline['valid_calls']} of {headline['questions']} questions answered "
          f"with a schema-valid call; its replies state {headline['stated']} of "
          f"{headline['values']} looked-up values")
    print(f"tool demo done in {elapsed:.0f} s; run folder: {run}")
    return {**headline, "seconds": elapsed, "run": str(run)}


if __name__ == "__main__":
    run_tools_demo(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/chat")
