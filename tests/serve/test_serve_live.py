"""The live server on a real socket: the official ``openai`` client (plain and streamed),
many concurrent clients, and a SIGTERM that must not lose logged exchanges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.runtime import BackgroundServer
from helpers import (assert_generation_stopped, db_rows, free_port, served_chat,
                     slow_chat_predictor, wait_healthy)

openai = pytest.importorskip("openai")
KEY = "live-secret"


@pytest.fixture(scope="module")
def live(predictors, tmp_path_factory):
    db = tmp_path_factory.mktemp("live") / "log.db"
    app = create_app(ServeSettings(api_key=KEY, log_db=str(db)), *predictors)
    with BackgroundServer(app) as server:
        server.db = db
        yield server


def test_openai_client_plain_and_streamed(live, chat_model):
    client = openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0)
    assert chat_model.name in [m.id for m in client.models.list().data]
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "i lost my card"}]
    plain = client.chat.completions.create(model=served_chat(client), messages=messages, max_tokens=6,
                                           temperature=0, seed=1)
    text = plain.choices[0].message.content
    assert len(text.split()) == 6 and plain.choices[0].finish_reason == "length"
    assert plain.usage.completion_tokens == 6
    assert plain.model_extra["dialogtune"]["intent"] is not None
    stream = client.chat.completions.create(model=served_chat(client), messages=messages, max_tokens=6,
                                            temperature=0, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices[0].finish_reason == "length"
    ids = {r["id"] for r in db_rows(live.db)}
    assert plain.id in ids and chunks[0].id in ids


def test_openai_client_errors(live):
    wrong = openai.OpenAI(base_url=live.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    client = openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=served_chat(client), max_tokens=100_000,
                                       messages=[{"role": "user", "content": "hi"}])


def test_concurrent_clients_are_all_served_and_logged(live):
    before = len(db_rows(live.db))
    headers = {"Authorization": f"Bearer {KEY}"}

    def one(i: int) -> int:
        with httpx.Client(base_url=live.url, headers=headers, timeout=60) as http:
            if i % 2:
                return http.post("/v1/intents", json={"text": f"send money {i}"}).status_code
            return http.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": f"hello {i}"}], "max_tokens": 4,
                "stream": i % 4 == 0}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(48)))
    assert codes == [200] * 48
    assert len(db_rows(live.db)) - before == 48


def test_client_disconnect_stops_the_generation_thread(predictors, chat_model, tmp_path):
    intent, _ = predictors
    chat, calls = slow_chat_predictor(chat_model, delay=0.02)
    db = tmp_path / "log.db"
    app = create_app(ServeSettings(log_db=str(db)), intent, chat)
    with BackgroundServer(app) as server:
        url = server.url + "/v1/chat/completions"
        long = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000,
                "stream": True}  # 1000 tokens x 20 ms = 20 s unless stopped
        for _ in range(2):  # twice: each dropped stream must end its own thread
            with httpx.stream("POST", url, json=long, timeout=30) as response:
                for line in response.iter_lines():
                    if '"content": "' in line and '"content": ""' not in line:
                        break  # one piece arrived: hang up
            assert_generation_stopped(calls)
            assert len(calls) < 500
        started = time.perf_counter()
        short = httpx.post(url, json={"messages": long["messages"], "max_tokens": 3},
                           timeout=30)
        assert short.status_code == 200 and time.perf_counter() - started < 8
    assert [r["id"] for r in db_rows(db)] == [short.json()["id"]]




def test_sigterm_drains_in_flight_requests_and_keeps_every_row(intent_run, chat_model,
                                                                 tmp_path):
    db, port = tmp_path / "log.db", free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "dialogtune.cli", "serve", "--intent", str(intent_run),
         "--chat", str(chat_model), "--port", str(port), "--log-db", str(db)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        wait_healthy(url, process)

        def one(i: int) -> bool:
            try:
                body = {"messages": [{"role": "user", "content": f"check my balance {i}"}],
                        "max_tokens": 48}
                return httpx.post(url + "/v1/chat/completions", json=body,
                                  timeout=60).status_code == 200
            except httpx.HTTPError:
                return False

        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(one, i) for i in range(12)]
            time.sleep(0.5)  # requests are queued / generating
            process.send_signal(signal.SIGTERM)
            ok = sum(f.result() for f in futures)
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown
        assert process.wait(60) in (0, -signal.SIGTERM)
        log = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Application shutdown complete" in log, log[-2000:]
    assert ok >= 1
    assert len(db_rows(db)) == ok
    assert not (tmp_path / "log.db-wal").exists() or (tmp_path / "log.db-wal").stat().st_size == 0
