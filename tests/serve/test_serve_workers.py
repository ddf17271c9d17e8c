"""The generation queue and the intent micro-batcher, with fake models (no torch)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dialogtune.serve.workers import GenerationWorker, MicroBatcher, QueueFull


class FakeChat:
    """Streams the words of ``reply``; can block until released, or fail."""

    def __init__(self, reply="one two three", gate: threading.Event | None = None):
        self.reply, self.gate, self.calls = reply, gate, []

    def stream(self, messages, **options):
        self.calls.append(messages[-1]["content"])
        if self.gate is not None:
            self.gate.wait(5)
        if messages[-1]["content"] == "boom":
            raise ValueError("model exploded")
        for word in self.reply.split():
            yield word + " "


async def collect(job) -> str:
    return "".join([piece async for piece in job.stream()])


def test_generation_runs_in_arrival_order_and_reports_errors():
    chat = FakeChat()
    worker = GenerationWorker(chat, max_queue=8)
    worker.start()

    async def scenario():
        jobs = [worker.submit([{"role": "user", "content": str(i)}]) for i in range(5)]
        bad = worker.submit([{"role": "user", "content": "boom"}])
        replies = await asyncio.gather(*(collect(j) for j in jobs))
        with pytest.raises(ValueError, match="exploded"):
            await collect(bad)
        after = await collect(worker.submit([{"role": "user", "content": "later"}]))
        return replies, after

    replies, after = asyncio.run(scenario())
    worker.stop()
    assert replies == ["one two three "] * 5 and after == "one two three "
    assert chat.calls == ["0", "1", "2", "3", "4", "boom", "later"]


def test_full_queue_refuses_instead_of_growing():
    gate = threading.Event()
    worker = GenerationWorker(FakeChat(gate=gate), max_queue=2)
    worker.start()

    async def scenario():
        first = worker.submit([{"role": "user", "content": "a"}])
        while worker.pending:  # the worker has taken the first job and is blocked on it
            await asyncio.sleep(0.01)
        queued = [worker.submit([{"role": "user", "content": "b"}]) for _ in range(2)]
        with pytest.raises(QueueFull):
            worker.submit([{"role": "user", "content": "c"}])
        gate.set()
        return await asyncio.gather(collect(first), *(collect(j) for j in queued))

    assert len(asyncio.run(scenario())) == 3
    worker.stop()


def test_cancelled_job_frees_the_worker():
    worker = GenerationWorker(FakeChat(reply=" ".join(["w"] * 1000)), max_queue=4)
    worker.start()

    async def scenario():
        job = worker.submit([{"role": "user", "content": "long"}])
        async for _ in job.stream():
            job.cancelled.set()
            break
        return await collect(worker.submit([{"role": "user", "content": "next"}]))

    assert asyncio.run(scenario()).startswith("w w")
    worker.stop()


def test_slots_run_that_many_jobs_at_once_and_queue_the_rest():
    gate = threading.Event()
    chat = FakeChat(gate=gate)
    worker = GenerationWorker(chat, max_queue=8, slots=3)
    worker.start()

    async def scenario():
        jobs = [worker.submit([{"role": "user", "content": str(i)}]) for i in range(4)]
        while len(chat.calls) < 3:  # three slots took a job each and wait on the gate
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        waiting = (len(chat.calls), worker.pending)
        gate.set()
        return waiting, await asyncio.gather(*(collect(j) for j in jobs))

    waiting, replies = asyncio.run(scenario())
    assert waiting == (3, 1) and replies == ["one two three "] * 4
    assert worker.problem() is None and worker.stop() and worker.slots == 3


def test_micro_batcher_groups_concurrent_requests():
    sizes = []

    def classify(items):
        sizes.append(len(items))
        time.sleep(0.05)  # a slow forward pass lets the next requests pile up
        return [item.upper() for item in items]

    batcher = MicroBatcher(classify, max_batch=64)
    batcher.start()

    async def scenario():
        return await asyncio.gather(*(batcher.submit([f"t{i}", f"u{i}"]) for i in range(10)))

    results = asyncio.run(scenario())
    batcher.stop()
    assert results == [[f"T{i}", f"U{i}"] for i in range(10)]
    assert sum(sizes) == 20 and len(sizes) < 10  # shared forward passes


def test_micro_batcher_passes_errors_to_every_waiting_request():
    def fail(items):
        raise RuntimeError("no model")

    batcher = MicroBatcher(fail)
    batcher.start()

    async def scenario():
        return await asyncio.gather(batcher.submit(["a"]), batcher.submit(["b"]),
                                    return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(scenario()))
    batcher.stop()
