"""Serving safety: the Host check (DNS rebinding), client errors as 400s, no internal text
or server paths in responses, the bounded intent queue and the API key from the
environment (issue 9, items 5 and 9)."""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.errors import APIError
from helpers import sse_events

HELLO = [{"role": "user", "content": "check my balance please"}]
STRICT_TEMPLATE = (  # as Llama-2/Mistral templates do
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}"
    "{% endif %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")


def client_for(base_url: str = "http://localhost", **settings) -> TestClient:
    return TestClient(create_app(ServeSettings(**settings)), base_url=base_url)


# --- Host check (DNS rebinding) ---------------------------------------------------------

@pytest.mark.parametrize("header, name", [("localhost:8000", "localhost"),
                                          ("[::1]:8000", "::1"), ("::1", "::1"),
                                          ("Example.COM.", "example.com"),
                                          ("127.0.0.1", "127.0.0.1")])
def test_host_name_drops_port_brackets_and_case(header, name):
    from dialogtune.serve.hosts import host_name

    assert host_name(header) == name


@pytest.mark.parametrize("host", ["localhost:8000", "localhost", "127.0.0.1:8000",
                                  "127.0.0.2", "[::1]:8000"])
def test_loopback_hosts_are_answered_by_default(host):
    with client_for() as client:
        assert client.get("/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/v1/models", "/"])
def test_a_foreign_host_is_refused_by_default(path):
    with client_for() as client:
        reply = client.get(path, headers={"Host": "evil.example"})
        assert reply.status_code == 400
        assert reply.json()["error"]["code"] == "invalid_host"
        posted = client.post("/v1/feedback", headers={"Host": "evil.example:8000"},
                             json={"completion_id": "x", "rating": 1})
        assert posted.status_code == 400 and posted.json()["error"]["code"] == "invalid_host"


def test_allowed_hosts_widen_the_check():
    with client_for(allowed_hosts=("a.example", "*.corp.example")) as client:
        for host, status in [("a.example:8000", 200), ("api.corp.example", 200),
                             ("localhost:8000", 200), ("b.example", 400),
                             ("corp.example.evil.example", 400)]:
            assert client.get("/health", headers={"Host": host}).status_code == status, host
    with client_for(allowed_hosts=("*",)) as client:
        assert client.get("/health", headers={"Host": "anything.example"}).status_code == 200


def test_a_non_loopback_bind_answers_to_its_own_name():
    with client_for(host="10.1.2.3") as client:
        assert client.get("/health", headers={"Host": "10.1.2.3:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400
    with client_for(host="0.0.0.0") as client:  # any address literal, never a foreign name
        assert client.get("/health", headers={"Host": "192.168.1.9:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400


def test_serve_reads_allowed_hosts_and_the_api_key_from_the_environment(monkeypatch, caplog):
    from dialogtune.commands.serve import build_settings

    monkeypatch.setenv("DIALOGTUNE_API_KEY", "from-env")
    settings = build_settings(allowed_hosts="a.example, b.example")
    assert settings.api_key == "from-env"
    assert settings.allowed_hosts == ("a.example", "b.example")
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        assert build_settings(api_key="typed").api_key == "typed"
    assert "DIALOGTUNE_API_KEY" in caplog.text  # a key on the command line is visible in ps


def test_the_serve_command_takes_the_key_from_the_environment(monkeypatch):
    from typer.testing import CliRunner

    from dialogtune import cli
    from dialogtune.serve import runtime

    seen = {}
    monkeypatch.setattr(runtime, "load_models", lambda *a: (None, None))
    monkeypatch.setattr(runtime, "load_chats", lambda *a: ([], None))
    monkeypatch.setattr(runtime, "run_server", lambda settings, *a: seen.update(s=settings))
    monkeypatch.setenv("DIALOGTUNE_API_KEY", "env-key")
    result = CliRunner().invoke(cli.app, ["serve", "--chat", "x"])
    assert result.exit_code == 0, result.output
    assert seen["s"].api_key == "env-key" and seen["s"].allowed_hosts is None


# --- errors, limits and what a response may reveal ----------------------------------------

@pytest.fixture(scope="module")
def chat(chat_model):
    """A private copy of the tiny chat model, so its template and limits can change."""
    from dialogtune.inference.chat import ChatPredictor

    return ChatPredictor.load(chat_model)


def test_no_server_path_in_health_models_or_replies(chat, chat_model):
    folder = str(chat_model.parent)
    with TestClient(create_app(ServeSettings(), chat_predictor=chat),
                    base_url="http://localhost") as client:
        bodies = [client.get("/health").text, client.get("/v1/models").text,
                  client.post("/v1/chat/completions",
                              json={"messages": HELLO, "max_tokens": 2}).text]
    assert chat.name == chat_model.name
    assert all(folder not in body and chat_model.name in body for body in bodies)


def test_a_template_refusal_is_a_400_with_its_message(chat, monkeypatch):
    monkeypatch.setattr(chat.tokenizer, "chat_template", STRICT_TEMPLATE)
    twice = [{"role": "user", "content": "hello"}, {"role": "user", "content": "hi"}]
    with TestClient(create_app(ServeSettings(), chat_predictor=chat),
                    base_url="http://localhost") as client:
        for stream in (False, True):
            reply = client.post("/v1/chat/completions",
                                json={"messages": twice, "max_tokens": 2, "stream": stream})
            assert reply.status_code == 400, reply.text
            error = reply.json()["error"]
            assert "roles must alternate" in error["message"] and error["param"] == "messages"
        ok = client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
        assert ok.status_code == 200


def test_prompts_longer_than_the_context_are_refused(chat, monkeypatch):
    monkeypatch.setattr(chat.tokenizer, "model_max_length", 40)
    long = [{"role": "user", "content": "balance " * 40}]
    with TestClient(create_app(ServeSettings(), chat_predictor=chat),
                    base_url="http://localhost") as client:
        reply = client.post("/v1/chat/completions", json={"messages": long, "max_tokens": 4})
        assert reply.status_code == 400 and "context of 40 tokens" in reply.text
        fits = client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 4})
        assert fits.status_code == 200, fits.text
        # the prompt fits, but not with room for max_tokens
        tight = client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 39})
        assert tight.status_code == 400


class BrokenChat:
    """The real tiny model whose generation fails with an internal-looking message."""

    def __init__(self, chat):
        self.name, self.tokenizer = chat.name, chat.tokenizer
        self.check_prompt = getattr(chat, "check_prompt", None)

    def stream(self, messages, **options):
        raise RuntimeError("secret detail: /srv/private/model.bin offset 42")
        yield  # a generator, like ChatPredictor.stream


def test_internal_error_text_never_reaches_the_client(chat, caplog):
    app = create_app(ServeSettings(), chat_predictor=BrokenChat(chat))
    with TestClient(app, base_url="http://localhost", raise_server_exceptions=False) as client, \
            caplog.at_level(logging.ERROR, logger="dialogtune.serve"):
        plain = client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
        streamed = client.post("/v1/chat/completions",
                               json={"messages": HELLO, "max_tokens": 2, "stream": True})
    assert plain.status_code == 500
    assert plain.json()["error"] == {"message": "generation failed (see the server log)",
                                     "type": "server_error", "param": None,
                                     "code": "generation_error"}
    errors = [e for e in sse_events(streamed.text) if isinstance(e, dict) and "error" in e]
    assert errors and errors[-1]["error"]["code"] == "generation_error"
    assert "secret" not in plain.text and "secret" not in streamed.text
    assert "secret detail" in caplog.text and "Traceback" in caplog.text  # the server log has it


# --- the intent micro-batch queue ----------------------------------------------------------

class GatedIntents:
    """An intent predictor whose forward pass waits for ``release``."""

    labels = type("Labels", (), {"labels": ["a", "b"]})()
    oos_threshold, config = None, None

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    def probabilities(self, texts):
        self.entered.set()
        assert self.release.wait(10)
        return np.tile([0.9, 0.1], (len(texts), 1))


def test_a_full_intent_queue_answers_429():
    from dialogtune.serve.schemas import IntentRequest
    from dialogtune.serve.service import DialogueService

    model = GatedIntents()
    service = DialogueService(ServeSettings(max_intent_queue=2), intent_predictor=model)
    service.start()

    async def scenario():
        ask = lambda: service.classify(IntentRequest(text="hi"))  # noqa: E731
        running = asyncio.ensure_future(ask())
        assert await asyncio.to_thread(model.entered.wait, 5)  # taken off the queue
        waiting = [asyncio.ensure_future(ask()) for _ in range(2)]
        await asyncio.sleep(0.05)  # both are queued now
        with pytest.raises(APIError) as refused:
            await ask()
        model.release.set()
        done = await asyncio.gather(running, *waiting)
        return refused.value, done

    try:
        refused, done = asyncio.run(scenario())
    finally:
        model.release.set()
        service.stop()
    assert refused.status == 429 and refused.code == "queue_full"
    assert [d["data"][0]["intent"] for d in done] == ["a", "a", "a"]


def test_serve_flags_set_the_generation_deadline_and_drain_time():
    from dialogtune.commands.serve import build_settings
    from dialogtune.errors import DialogtuneError

    settings = build_settings(generation_timeout=12.5, drain_seconds=3)
    assert (settings.generation_timeout, settings.drain_seconds) == (12.5, 3)
    with pytest.raises(DialogtuneError, match="--generation-timeout"):
        build_settings(generation_timeout=0)
