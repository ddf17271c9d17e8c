"""Step-level batched generation (``inference/batching.py``, ``batch_cache.py``): replies
that share forward passes are the replies each would get alone, per-request options hold,
and one request's cancellation, deadline or failure touches no other.

The model is the tiny Llama of ``helpers.chat``; a gate on the generating thread holds
the first step until every request of a test is queued, so they really share steps.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from dialogtune.data.tool_calls import ToolCall, call_problems, function_specs
from dialogtune.inference.batch_cache import BatchCache
from dialogtune.inference.chat import ChatPredictor

PROMPTS = ["Hello, I lost my card.", "What is my balance?",
           "Send 20 dollars to Amir and then pay my phone bill please.", "Thanks, bye."]
TRANSFER = {"type": "function", "function": {"name": "transfer", "parameters": {
    "type": "object", "properties": {"amount": {"type": "integer", "minimum": 1,
                                                "maximum": 500},
                                     "to": {"type": "string", "maxLength": 6}},
    "required": ["amount", "to"]}}}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def alone(tool_folder) -> ChatPredictor:
    """The one-at-a-time path (transformers' ``generate``)."""
    return ChatPredictor.from_model(tool_folder)


def batched(folder: str, max_batch: int = 8) -> tuple[ChatPredictor, threading.Event]:
    """A batching predictor whose generating thread waits for the returned gate."""
    chat, gate = ChatPredictor.from_model(folder), threading.Event()
    assert chat.enable_batching(max_batch, prepare=lambda: gate.wait(10))
    return chat, gate


def concurrently(calls: list, gate: threading.Event) -> list:
    """Run the zero-argument ``calls`` on threads; open the gate once all are queued."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        time.sleep(0.3)  # every stream has submitted its sequence by now
        gate.set()
        return [future.result(timeout=60) for future in futures]


def text(chat: ChatPredictor, prompt: str, **options) -> str:
    return "".join(chat.stream(user(prompt), **options))


@torch.no_grad()
def test_a_padded_batch_step_gives_each_row_the_logits_it_has_alone(alone):
    from transformers import DynamicCache

    model = alone.model
    prompts = [alone.prompt_ids(user(p))[0].tolist() for p in PROMPTS[:3]]
    batch = BatchCache()
    for ids in prompts:  # lengths differ: the shorter rows are left-padded
        cache = DynamicCache(config=model.config)
        model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True)
        batch.join(cache)
    assert len({len(p) for p in prompts}) == 3 and batch.mask.shape[1] == max(map(len, prompts))
    for step, rows in enumerate([[0, 1, 2], [0, 2]]):  # the middle one leaves after a step
        batch.keep(rows)
        prompts = [prompts[r] for r in rows] if step else prompts
        new = [[7 + step + i] for i in range(len(prompts))]
        mask, positions = batch.step_inputs()
        out = model(input_ids=torch.tensor(new), attention_mask=mask, position_ids=positions,
                    cache=batch.cache, use_cache=True)
        batch.mask = mask
        for row, ids in enumerate(prompts):
            ids.extend(new[row])
            solo = model(input_ids=torch.tensor([ids])).logits[0, -1]
            torch.testing.assert_close(out.logits[row, -1], solo, atol=1e-5, rtol=1e-4)
    # the longest prompt left: the padding every remaining row shared is trimmed
    assert batch.mask.shape[1] == max(map(len, prompts)) and bool(batch.mask[:, 0].any())


def test_greedy_replies_batched_equal_the_replies_alone(alone, tool_folder):
    lengths = [5, 9, 14, 20]
    expected = [text(alone, p, max_new_tokens=n) for p, n in zip(PROMPTS, lengths)]
    chat, gate = batched(tool_folder, max_batch=2)  # the last two join as the first leave
    got = concurrently([lambda p=p, n=n: text(chat, p, max_new_tokens=n)
                        for p, n in zip(PROMPTS, lengths)], gate)
    assert got == expected and all(expected)
    assert chat.batcher.widest == 2 and chat.batcher.steps < sum(lengths)


def test_stop_strings_and_sampling_options_stay_per_request(alone, tool_folder):
    plain = text(alone, PROMPTS[0], max_new_tokens=12)
    stop = plain[len(plain) // 2:len(plain) // 2 + 2]
    chat, gate = batched(tool_folder)
    sampled = {"max_new_tokens": 12, "temperature": 1.0, "top_p": 0.9, "seed": 3}
    got = concurrently([lambda: text(chat, PROMPTS[0], max_new_tokens=12, stop=[stop]),
                        lambda: text(chat, PROMPTS[1], **sampled),
                        lambda: text(chat, PROMPTS[2], max_new_tokens=12)], gate)
    assert got[0] == plain[:plain.index(stop)]
    assert got[2] == text(alone, PROMPTS[2], max_new_tokens=12)
    # a seed gives the same sample whoever shares the steps
    again, gate = batched(tool_folder)
    assert concurrently([lambda: text(again, PROMPTS[1], **sampled)], gate) == [got[1]]


def test_a_cancelled_or_expired_request_leaves_and_the_others_finish(alone, tool_folder):
    chat, gate = batched(tool_folder)
    cancel = threading.Event()

    def cancelled():
        pieces = []
        for piece in chat.stream(user(PROMPTS[0]), max_new_tokens=200, cancel=cancel):
            pieces.append(piece)
            cancel.set()
        return pieces

    def expired():
        return text(chat, PROMPTS[1], max_new_tokens=200, deadline=time.monotonic() - 1)

    def full():
        return text(chat, PROMPTS[2], max_new_tokens=30)

    short, late, whole = concurrently([cancelled, expired, full], gate)
    assert len(short) <= 3 and late == ""
    assert whole == text(alone, PROMPTS[2], max_new_tokens=30)


def test_each_request_keeps_its_own_tool_call_grammar(alone, tool_folder):
    tools, named = [TRANSFER], {"type": "function", "function": {"name": "transfer"}}

    def reply(chat, choice):
        return list(chat.stream_respond(user(PROMPTS[2]), tools, max_new_tokens=200,
                                        tool_choice=choice))

    chat, gate = batched(tool_folder)
    got = concurrently([lambda: reply(chat, named), lambda: reply(chat, "none"),
                        lambda: reply(chat, "required")], gate)
    assert got == [reply(alone, named), reply(alone, "none"), reply(alone, "required")]
    calls = [item for item in got[0] + got[2] if isinstance(item, ToolCall)]
    assert calls and all(not call_problems(c, function_specs(tools)) for c in calls)
    assert not any(isinstance(item, ToolCall) for item in got[1])


def test_one_failing_request_does_not_fail_the_batch(alone, tool_folder, monkeypatch):
    chat, gate = batched(tool_folder)
    original = chat.batcher._choose

    def choose(sequence, logits):
        if getattr(sequence, "boom", False):
            raise ValueError("grammar exploded")
        return original(sequence, logits)

    submit = chat.batcher._submit

    def mark(sequence):
        if sequence.max_new_tokens == 13:
            sequence.boom = True
        submit(sequence)

    monkeypatch.setattr(chat.batcher, "_choose", choose)
    monkeypatch.setattr(chat.batcher, "_submit", mark)

    def failing():
        with pytest.raises(ValueError, match="exploded"):
            text(chat, PROMPTS[0], max_new_tokens=13)
        return "failed"

    got = concurrently([failing, lambda: text(chat, PROMPTS[1], max_new_tokens=10)], gate)
    assert got == ["failed", text(alone, PROMPTS[1], max_new_tokens=10)]
    assert text(chat, PROMPTS[3], max_new_tokens=4) == text(alone, PROMPTS[3], max_new_tokens=4)


def test_a_failed_batch_step_fails_its_requests_and_the_next_ones_are_served(alone,
                                                                               tool_folder):
    chat, gate = batched(tool_folder)
    failures = []

    def explode(module, args, kwargs):
        if kwargs["input_ids"].shape[0] > 1 and not failures:  # the first shared step
            failures.append(True)
            raise RuntimeError("out of memory")

    hook = chat.model.register_forward_pre_hook(explode, with_kwargs=True)

    def failing(prompt):
        with pytest.raises(RuntimeError, match="out of memory"):
            text(chat, prompt, max_new_tokens=8)
        return "failed"

    got = concurrently([lambda: failing(PROMPTS[0]), lambda: failing(PROMPTS[1])], gate)
    hook.remove()
    assert got == ["failed", "failed"] and failures == [True]
    assert text(chat, PROMPTS[2], max_new_tokens=6) == text(alone, PROMPTS[2], max_new_tokens=6)


def test_the_generating_thread_runs_its_setup_before_every_step(tool_folder):
    """``prepare`` (the server's thread count, which follows other jobs' load) runs each
    step, so a long burst of replies adapts too, not only a thread's first step."""
    calls = []
    chat = ChatPredictor.from_model(tool_folder)
    assert chat.enable_batching(2, prepare=lambda: calls.append(torch.get_num_threads()))
    reply = chat.stream(user(PROMPTS[0]), max_new_tokens=6)
    pieces = list(reply)
    # one per step at least: the step that admits the request decodes tokens 1 and 2
    assert pieces and len(calls) >= 5
