"""The server's batched generation, several chat models and reloading them.

Concurrent clients of a batching server get the replies the one-at-a-time worker gives
them (greedy), while sharing forward passes; a request's ``model`` picks the chat model;
``/v1/admin/reload`` and SIGHUP switch new requests to fresh weights while a reply in
flight finishes on the old ones.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from dialogtune.cli import main
from dialogtune.inference.chat import ChatPredictor
from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.chat_models import reload_on_hangup
from dialogtune.serve.runtime import BackgroundServer
from helpers import slow_chat_predictor

KEY = "batch-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def other_weights(chat_model, name: str, seed: int = 1) -> ChatPredictor:
    """The tiny chat model with different (random) weights under another name."""
    chat = ChatPredictor.load(chat_model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in chat.model.parameters():
            parameter.normal_(0, 0.5)
    chat.name = name
    return chat


def ask(url: str, text: str, model: str | None = None, tokens: int = 8) -> str:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": tokens,
            "temperature": 0, **({"model": model} if model else {})}
    response = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def replies(app, texts: list[str], tokens: list[int]) -> list[str]:
    with BackgroundServer(app) as server, ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda job: ask(server.url, *job), [
            (text, None, n) for text, n in zip(texts, tokens)]))


def test_concurrent_replies_batched_equal_the_one_at_a_time_worker(chat_model):
    texts = ["hello", "i lost my card", "send money to my friend please", "balance"] * 2
    tokens = [3, 9, 6, 12, 4, 7, 10, 5]
    chat, calls = slow_chat_predictor(chat_model, delay=0.01)  # so requests overlap
    batched = replies(create_app(ServeSettings(api_key=KEY), None, chat), texts, tokens)
    assert chat.batcher is not None and chat.batcher.widest > 1
    assert len(calls) < sum(tokens)  # forward passes were shared
    alone = ChatPredictor.load(chat_model)
    single = replies(create_app(ServeSettings(api_key=KEY, generation_batch=1), None, alone),
                     texts, tokens)
    assert alone.batcher is None and batched == single
    assert [len(reply.split()) for reply in single] == tokens


def test_the_request_model_picks_one_of_several_chat_models(chat_model):
    first, second = ChatPredictor.load(chat_model), other_weights(chat_model, "second")
    app = create_app(ServeSettings(api_key=KEY), None, [first, second])
    with BackgroundServer(app) as server:
        cards = httpx.get(server.url + "/v1/models", headers=AUTH).json()["data"]
        assert [c["id"] for c in cards] == [first.name, "second"]
        default, named = ask(server.url, "hello"), ask(server.url, "hello", "second")
        assert default == ask(server.url, "hello", first.name) and default != named
        assert named == "".join(second.stream([{"role": "user", "content": "hello"}],
                                               max_new_tokens=8))
        unknown = httpx.post(server.url + "/v1/chat/completions", headers=AUTH, json={
            "model": "third", "messages": [{"role": "user", "content": "hi"}]})
        assert unknown.status_code == 404 and "'third'" in unknown.json()["error"]["message"]
        health = httpx.get(server.url + "/health").json()
        assert health["chats"] == [first.name, "second"] and health["batch"] == 8


def test_reload_switches_new_requests_and_lets_a_reply_in_flight_finish(chat_model):
    old, calls = slow_chat_predictor(chat_model, delay=0.02)
    fresh = other_weights(chat_model, "ignored")
    app = create_app(ServeSettings(api_key=KEY), None, old, reloader=lambda name: fresh)
    expected_old = "".join(ChatPredictor.load(chat_model).stream(
        [{"role": "user", "content": "hello"}], max_new_tokens=40))
    with BackgroundServer(app) as server:
        before = ask(server.url, "hello")
        started = len(calls)  # the forward passes of the request before count for nothing
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(ask, server.url, "hello", None, 40)  # ~1 s of steps
            while len(calls) < started + 5:  # it is generating
                threading.Event().wait(0.01)
            reload = httpx.post(server.url + "/v1/admin/reload", headers=AUTH, json={})
            assert reload.status_code == 200, reload.text
            assert [item["id"] for item in reload.json()["data"]] == [old.name]
            after = ask(server.url, "hello")
            assert in_flight.result(timeout=60) == expected_old
        assert fresh.name == old.name and after != before
        assert after == "".join(fresh.stream([{"role": "user", "content": "hello"}],
                                             max_new_tokens=8))


def test_reload_is_an_admin_route(chat_model):
    def broken(name):
        raise OSError("disk gone")

    chat = ChatPredictor.load(chat_model)
    with TestClient(create_app(ServeSettings(api_key=KEY), None, chat, reloader=broken),
                    base_url="http://localhost") as client:
        assert client.post("/v1/admin/reload").status_code == 401
        missing = client.post("/v1/admin/reload", headers=AUTH, json={"model": "nope"})
        assert missing.status_code == 404
        failed = client.post("/v1/admin/reload", headers=AUTH, json={"model": chat.name})
        assert failed.status_code == 500 and "keep serving" in failed.json()["error"]["message"]
        assert client.post("/v1/chat/completions", headers=AUTH, json={
            "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).status_code == 200
    with TestClient(create_app(ServeSettings(), None, chat, reloader=broken),
                    base_url="http://localhost") as keyless:
        refused = keyless.post("/v1/admin/reload")
        assert refused.status_code == 403 and "SIGHUP" in refused.json()["error"]["message"]
    with TestClient(create_app(ServeSettings(api_key=KEY), None, chat),
                    base_url="http://localhost") as fixed:
        assert fixed.post("/v1/admin/reload", headers=AUTH).status_code == 400


def test_sighup_reloads():
    reloaded = []

    async def reload():
        reloaded.append(True)
        return {"data": [{"id": "chat"}]}

    async def scenario():
        assert reload_on_hangup(reload)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                if reloaded:
                    return
                await asyncio.sleep(0.01)
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    asyncio.run(scenario())
    assert reloaded == [True]


def test_serve_refuses_two_chat_models_of_one_name_and_a_zero_batch(chat_model, capsys):
    assert main(["serve", "--chat", str(chat_model), "--chat", str(chat_model)]) == 2
    assert "same name" in capsys.readouterr().err
    assert main(["serve", "--chat", str(chat_model), "--generation-batch", "0"]) == 2
    assert "--generation-batch" in capsys.readouterr().err


@pytest.mark.parametrize("batch", [1, 8])
def test_a_prompt_tuning_model_is_served_one_at_a_time(batch):
    class PromptLearning:  # what enable_batching refuses
        name, batcher = "pt", None

        def enable_batching(self, max_batch, prepare=None):
            return False

    service = create_app(ServeSettings(generation_batch=batch), None,
                         PromptLearning()).state.service
    assert service.worker.slots == 1
