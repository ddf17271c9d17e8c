"""The HTTP API in-process (FastAPI TestClient): chat, streaming, intents, pipeline,
limits, auth, feedback and the conversation log."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dialogtune.serve import ServeSettings, create_app
from helpers import db_rows, sse_events

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "check my balance please"}]


def make_client(predictors, **settings):
    intent, chat = predictors
    models = {"intent_predictor": intent, "chat_predictor": chat}
    for name in ("intent_predictor", "chat_predictor"):
        if settings.pop(f"no_{name.split('_')[0]}", False):
            models[name] = None
    # a loopback Host: the server refuses TestClient's default 'testserver' (DNS rebinding)
    return TestClient(create_app(ServeSettings(**settings), **models), base_url="http://localhost")


@pytest.fixture(scope="module")
def client(predictors, tmp_path_factory):
    db = tmp_path_factory.mktemp("api") / "log.db"
    with make_client(predictors, log_db=str(db), max_tokens_limit=64, max_messages=4,
                     max_chars=500, max_texts=3, max_body_bytes=20_000) as test_client:
        test_client.db = db
        yield test_client


def test_health_and_models(client, chat_model):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["log"] is True
    assert health["chat"] == chat_model.name and health["intent"] == "intent_run"
    cards = client.get("/v1/models").json()
    assert cards["object"] == "list"
    assert {(c["id"], c["task"]) for c in cards["data"]} == {(chat_model.name, "chat"),
                                                           ("intent_run", "intent")}
    # a chat model tells the format its weights are in; an intent model has none
    assert {c["task"]: c["precision"] for c in cards["data"]} == {
        "chat": "fp32", "intent": None}  # the library default: float32 unless asked


def test_chat_completion_shape_usage_and_log(client, chat_model):
    request = {"messages": HELLO, "max_tokens": 6, "temperature": 0}
    unknown = client.post("/v1/chat/completions", json={"model": "any", **request})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "model"
    assert "'any'" in unknown.json()["error"]["message"]
    reply = client.post("/v1/chat/completions", json={"model": chat_model.name, **request})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == chat_model.name
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 6
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 6 and body["usage"]["prompt_tokens"] > 4
    turn = body["dialogtune"]
    assert turn["intent"] in ("balance", "card_lost", "transfer", "out_of_scope")
    assert 0 < turn["confidence"] <= 1 and turn["fallback"] is False
    row = next(r for r in db_rows(client.db) if r["id"] == body["id"])
    assert row["reply"] == choice["message"]["content"] and row["intent"] == turn["intent"]
    assert row["kind"] == "chat" and row["latency_ms"] > 0
    assert "check my balance please" in row["messages"]


def test_streaming_chunks_end_with_done_and_match_plain_reply(client):
    request = {"messages": HELLO, "max_tokens": 5, "temperature": 0}
    plain = client.post("/v1/chat/completions", json=request).json()
    with client.stream("POST", "/v1/chat/completions",
                       json={**request, "stream": True,
                             "stream_options": {"include_usage": True}}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[0]["dialogtune"]["intent"] == plain["dialogtune"]["intent"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert any(r["id"] == chunks[0]["id"] and r["reply"] == text for r in db_rows(client.db))


def test_stop_strings_and_seeded_sampling(client):
    base = {"messages": HELLO, "max_tokens": 8, "temperature": 0.9, "seed": 7}
    first = client.post("/v1/chat/completions", json=base).json()
    again = client.post("/v1/chat/completions", json=base).json()
    text = first["choices"][0]["message"]["content"]
    assert text == again["choices"][0]["message"]["content"]
    stop = text.split()[2]
    cut = client.post("/v1/chat/completions", json={**base, "stop": [stop]}).json()
    assert cut["choices"][0]["message"]["content"] == text[:text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_intents_single_and_batch(client):
    one = client.post("/v1/intents", json={"text": "i lost my card", "top_k": 2}).json()
    assert one["model"] == "intent_run" and one["object"] == "list"
    (result,) = one["data"]
    assert result["text"] == "i lost my card" and len(result["intents"]) == 2
    probs = [r["probability"] for r in result["intents"]]
    assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert result["confidence"] == probs[0] and result["id"].startswith("intent-")
    many = client.post("/v1/intents", json={"texts": ["send money", "show balance"]}).json()
    assert [r["text"] for r in many["data"]] == ["send money", "show balance"]
    assert all(len(r["intents"]) == 3 for r in many["data"])
    logged = {r["id"]: r for r in db_rows(client.db) if r["kind"] == "intent"}
    assert result["id"] in logged and logged[result["id"]]["intent"] == result["intent"]


def test_out_of_scope_threshold_and_fallback_reply(predictors):
    intent, _ = predictors
    with make_client(predictors, oos_threshold=0.99,
                     fallback_reply="Sorry, I can only help with banking.") as oos_client:
        body = oos_client.post("/v1/intents", json={"text": "hello"}).json()
        assert body["threshold"] == 0.99
        (result,) = body["data"]
        assert result["out_of_scope"] is True and result["intent"] == "out_of_scope"
        assert result["intents"][0]["intent"] in intent.labels.labels
        chat = oos_client.post("/v1/chat/completions", json={"messages": HELLO}).json()
        assert chat["choices"][0]["message"]["content"] == "Sorry, I can only help with banking."
        assert chat["dialogtune"] == {"intent": "out_of_scope", "out_of_scope": True,
                                      "fallback": True,
                                      "confidence": chat["dialogtune"]["confidence"]}
        stream = oos_client.post("/v1/chat/completions", json={"messages": HELLO, "stream": True})
        events = sse_events(stream.text)
        assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == \
            "Sorry, I can only help with banking."
    with make_client(predictors, oos_threshold=0.0) as in_scope:
        (result,) = in_scope.post("/v1/intents", json={"text": "hello"}).json()["data"]
        assert result["out_of_scope"] is False and result["intent"] != "out_of_scope"


def test_run_threshold_is_the_default(client, predictors):
    assert client.post("/v1/intents", json={"text": "x"}).json()["threshold"] == \
        pytest.approx(predictors[0].oos_threshold)


@pytest.mark.parametrize("path, body, status, param", [
    ("/v1/chat/completions", {"messages": HELLO * 5}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a" * 501}]}, 400,
     "messages"),
    ("/v1/chat/completions", {"messages": HELLO, "max_tokens": 65}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": HELLO, "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": HELLO, "temperature": 3}, 400, "temperature"),
    ("/v1/chat/completions", {"messages": HELLO, "n": 2}, 400, "n"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 400,
     "messages.0.role"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": HELLO, "stop": ["a"] * 5}, 400, "stop"),
    ("/v1/chat/completions", [1, 2], 400, None),
    ("/v1/intents", {"texts": ["a", "b", "c", "d"]}, 400, "texts"),
    ("/v1/intents", {"text": "a", "texts": ["b"]}, 400, None),
    ("/v1/intents", {"texts": ["x" * 501]}, 400, "texts"),
    ("/v1/feedback", {"completion_id": "chatcmpl-x"}, 400, None),
    ("/v1/feedback", {"completion_id": "nope", "rating": "up"}, 404, "completion_id"),
    ("/v1/feedback", {"completion_id": "x", "rating": "meh"}, 400, "rating"),
])
def test_bad_requests_are_4xx_json_errors(client, path, body, status, param):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"].endswith("_error")
    if param:
        assert error["param"] == param


def test_malformed_and_oversized_bodies(client):
    bad = client.post("/v1/chat/completions", content=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]["message"]
    big = client.post("/v1/intents", json={"text": "a" * 30_000})
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/intents").status_code == 405


def test_feedback_is_recorded(client):
    body = client.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 3}).json()
    up = client.post("/v1/feedback", json={"completion_id": body["id"], "rating": "down",
                                          "corrected_reply": "Your balance is $10.",
                                          "corrected_intent": "balance"})
    assert up.status_code == 200 and up.json()["completion_id"] == body["id"]
    (row,) = [r for r in db_rows(client.db, "feedback") if r["completion_id"] == body["id"]]
    assert (row["rating"], row["corrected_reply"], row["corrected_intent"]) == \
        ("down", "Your balance is $10.", "balance")


def test_api_key_required_on_v1_only(predictors):
    with make_client(predictors, api_key=KEY) as locked:
        assert locked.get("/health").status_code == 200
        assert locked.get("/").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            denied = locked.post("/v1/intents", json={"text": "hi"}, headers=headers)
            assert denied.status_code == 401 and denied.json()["error"]["code"] == \
                "invalid_api_key"
            assert locked.get("/v1/models", headers=headers).status_code == 401
        assert locked.post("/v1/intents", json={"text": "hi"}, headers=AUTH).status_code == 200
        assert locked.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2},
                           headers=AUTH).status_code == 200


def test_missing_models_and_log(predictors):
    with make_client(predictors, no_chat=True) as intent_only:
        missing = intent_only.post("/v1/chat/completions", json={"messages": HELLO})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
        no_log = intent_only.post("/v1/feedback", json={"completion_id": "x", "rating": "up"})
        assert no_log.status_code == 400
    with make_client(predictors, no_intent=True) as chat_only:
        assert chat_only.post("/v1/intents", json={"text": "hi"}).status_code == 404
        body = chat_only.post("/v1/chat/completions", json={"messages": HELLO,
                                                           "max_tokens": 2}).json()
        assert body["dialogtune"]["intent"] is None


def test_web_page_and_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '/static/app.js' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "getReader" in script.text
    assert client.get("/static/style.css").status_code == 200
