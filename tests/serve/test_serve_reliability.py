"""Generation that fails, overruns or is abandoned must never stall the server (issue 9).

Real tiny model, real generation thread: errors raised inside the thread, deadlines,
client disconnects, a stuck worker seen by /health, and a shutdown bounded in time.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.runtime import BackgroundServer
from dialogtune.serve.workers import GenerationWorker
from helpers import assert_generation_stopped, generation_threads, slow_chat_predictor, wait_until

HI = [{"role": "user", "content": "hi"}]
TOO_BIG_SEED = 2**64  # passes a plain int field; torch.manual_seed raises on it


def within(seconds: float, fn, *args):
    """fn(*args), failing (not hanging) the test when it takes longer than ``seconds``."""
    result: dict = {}

    def call():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # handed to the test below
            result["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


async def collect(job) -> str:
    return "".join([piece async for piece in job.stream()])


class StuckChat:
    """A chat model whose generation never returns on its own (ignores cancel/deadline)."""

    name, tokenizer = "stuck", None

    def __init__(self):
        self.release, self.entered = threading.Event(), threading.Event()

    def check_prompt(self, messages, max_new_tokens):
        """Every prompt fits: this fake has no context limit."""

    def stream(self, messages, **options):
        self.entered.set()
        self.release.wait(60)
        yield "late"


@pytest.fixture
def slow(chat_model):
    """A fresh ChatPredictor taking 20 ms a token, and its list of forward passes."""
    return slow_chat_predictor(chat_model, delay=0.02)


def test_error_in_the_generation_thread_reaches_the_consumer(chat_model):
    chat, _ = slow_chat_predictor(chat_model, delay=0)
    with pytest.raises(ValueError, match="[Oo]verflow"):
        within(10, lambda: list(chat.stream(HI, max_new_tokens=4, seed=TOO_BIG_SEED)))
    assert not generation_threads()
    assert len(within(10, lambda: "".join(chat.stream(HI, max_new_tokens=4))).split()) == 4


def test_worker_reports_a_thread_error_and_serves_the_next_job(chat_model):
    chat, _ = slow_chat_predictor(chat_model, delay=0)
    worker = GenerationWorker(chat, max_queue=4)
    worker.start()

    async def scenario():
        bad = worker.submit(HI, max_new_tokens=4, seed=TOO_BIG_SEED)
        with pytest.raises(ValueError):
            await asyncio.wait_for(collect(bad), 10)
        return await asyncio.wait_for(collect(worker.submit(HI, max_new_tokens=4)), 10)

    assert len(asyncio.run(scenario()).split()) == 4
    assert worker.problem() is None
    assert worker.stop(5)


def test_http_errors_are_json_without_internals_and_the_next_request_works(chat_model):
    chat, _ = slow_chat_predictor(chat_model, delay=0)
    fail = threading.Event()

    def explode(*_):
        if fail.is_set():
            raise RuntimeError("secret internal detail")

    chat.model.register_forward_pre_hook(explode)  # raises inside the generation thread
    with BackgroundServer(create_app(ServeSettings(drain_seconds=1), chat_predictor=chat)
                          ) as server, httpx.Client(base_url=server.url, timeout=15) as client:
        url = "/v1/chat/completions"
        seed = client.post(url, json={"messages": HI, "seed": TOO_BIG_SEED})  # old code: hung
        assert seed.status_code == 400 and seed.json()["error"]["param"] == "seed"
        fail.set()
        plain = client.post(url, json={"messages": HI, "max_tokens": 4})
        streamed = client.post(url, json={"messages": HI, "max_tokens": 4, "stream": True})
        fail.clear()
        ok = client.post(url, json={"messages": HI, "max_tokens": 4})
    assert plain.status_code == 500
    assert plain.json()["error"]["code"] == "generation_error"
    assert "secret" not in plain.text and "secret" not in streamed.text
    assert '"code": "generation_error"' in streamed.text
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 4


def test_generation_past_its_deadline_is_cut_with_finish_reason_length(slow):
    chat, calls = slow
    app = create_app(ServeSettings(generation_timeout=0.5), chat_predictor=chat)
    with TestClient(app, base_url="http://localhost") as client:
        started = time.monotonic()
        reply = client.post("/v1/chat/completions",
                            json={"messages": HI, "max_tokens": 450})  # 9 s untimed
        took = time.monotonic() - started
    assert reply.status_code == 200 and took < 5
    assert reply.json()["choices"][0]["finish_reason"] == "length"
    assert 0 < reply.json()["usage"]["completion_tokens"] < 200
    assert_generation_stopped(calls)


def test_health_reports_a_stuck_generation_as_degraded():
    chat = StuckChat()
    app = create_app(ServeSettings(generation_timeout=0.2, drain_seconds=0.5),
                     chat_predictor=chat)
    try:
        with BackgroundServer(app) as server:
            assert httpx.get(server.url + "/health").json()["status"] == "ok"
            request = threading.Thread(target=lambda: httpx.post(
                server.url + "/v1/chat/completions", json={"messages": HI}, timeout=10),
                daemon=True)
            request.start()
            assert chat.entered.wait(10)
            assert wait_until(lambda: httpx.get(server.url + "/health").status_code == 503)
            health = httpx.get(server.url + "/health").json()
            assert health["status"] == "degraded" and "stuck" in health["problem"]
    finally:
        chat.release.set()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_reports_a_dead_worker_thread():
    def die():
        raise SystemExit  # not an Exception: ends the worker's thread

    worker = GenerationWorker(StuckChat(), prepare=die)
    worker.start()
    assert worker.problem() is None

    async def scenario():
        return await asyncio.wait_for(collect(worker.submit(HI)), 5)

    assert asyncio.run(scenario()) == ""  # the job still ends; the thread does not
    assert wait_until(lambda: worker.problem() is not None)
    assert "stopped" in worker.problem()


def test_stop_cancels_a_long_generation_within_the_drain_time(slow):
    chat, calls = slow
    worker = GenerationWorker(chat, max_queue=4)
    worker.start()

    async def scenario():
        job = worker.submit(HI, max_new_tokens=1000)  # 20 s if nobody stops it
        queued = worker.submit(HI, max_new_tokens=1000)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        stopped = await asyncio.to_thread(worker.stop, 0.5)
        took = time.monotonic() - started
        assert await asyncio.wait_for(collect(job), 2)  # cut short, not lost
        with pytest.raises(Exception, match="shutting down"):
            await asyncio.wait_for(collect(queued), 2)
        return stopped, took, job.truncated

    stopped, took, truncated = asyncio.run(scenario())
    assert stopped and truncated and took < 1.5
    assert_generation_stopped(calls)
    assert len(calls) < 200


def test_server_shutdown_is_bounded_even_with_a_stuck_generation():
    chat = StuckChat()
    app = create_app(ServeSettings(drain_seconds=0.5), chat_predictor=chat)
    try:
        server = BackgroundServer(app).__enter__()
        threading.Thread(target=lambda: httpx.post(server.url + "/v1/chat/completions",
                                                   json={"messages": HI}, timeout=30),
                         daemon=True).start()
        assert chat.entered.wait(10)
        started = time.monotonic()
        server.__exit__(None, None, None)
        assert not server._thread.is_alive() and time.monotonic() - started < 5
    finally:
        chat.release.set()


def test_non_stream_disconnect_cancels_the_generation(slow):
    chat, calls = slow
    with BackgroundServer(create_app(ServeSettings(), chat_predictor=chat)) as server:
        url = server.url + "/v1/chat/completions"
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and hangs up
            httpx.post(url, json={"messages": HI, "max_tokens": 1000}, timeout=0.5)
        assert_generation_stopped(calls)
        assert len(calls) < 200
        ok = httpx.post(url, json={"messages": HI, "max_tokens": 3}, timeout=30)
        assert ok.status_code == 200
