"""Serving an NLU run: ``/v1/intents`` and the chat turn carry slots, the log keeps them,
feedback's ``corrected_slots`` are checked and exported by ``export-logs --format nlu``."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from helpers import SRC, db_rows, tiny_nlu_run

from dialogtune.cli import main
from dialogtune.data.formats.nlu import read_nlu_examples
from dialogtune.inference.nlu import NluPredictor
from dialogtune.inference.intent import load_classifier
from dialogtune.serve import ServeSettings, create_app
from dialogtune.data.conversation_log import ConversationStore, Exchange, read_reviewed

STATIC = SRC / "serve" / "static"


@pytest.fixture(scope="module")
def nlu_predictor(tmp_path_factory) -> NluPredictor:
    predictor = load_classifier(tiny_nlu_run(tmp_path_factory.mktemp("nlu_serve")))
    assert isinstance(predictor, NluPredictor)
    return predictor


@pytest.fixture(scope="module")
def client(nlu_predictor, chat_model, tmp_path_factory):
    from dialogtune.inference.chat import ChatPredictor

    db = tmp_path_factory.mktemp("nlu_api") / "log.db"
    # threshold 0: the tiny run's calibrated one would send unseen phrasings out of scope
    app = create_app(ServeSettings(log_db=str(db), max_tokens_limit=8, oos_threshold=0.0),
                     intent_predictor=nlu_predictor,
                     chat_predictor=ChatPredictor.load(chat_model))
    with TestClient(app, base_url="http://localhost") as test_client:
        test_client.db = db
        yield test_client


def slot_map(slots: list[dict]) -> dict[str, str]:
    return {s["slot"]: s["value"] for s in slots}


def test_intents_return_slots_indexing_the_text(client):
    texts = ["please send Lena twenty dollars", "show me the joint balance please"]
    reply = client.post("/v1/intents", json={"texts": texts})
    assert reply.status_code == 200, reply.text
    first, second = reply.json()["data"]
    assert first["intent"] == "transfer" and second["intent"] == "balance"
    assert slot_map(first["slots"]) == {"recipient": "Lena", "amount": "twenty"}
    assert slot_map(second["slots"]) == {"account": "joint"}
    for result in (first, second):
        for slot in result["slots"]:
            assert result["text"][slot["start"]:slot["end"]] == slot["value"]
            assert 0 < slot["confidence"] <= 1
    row = next(r for r in db_rows(client.db) if r["id"] == first["id"])
    assert slot_map(json.loads(row["slots"])) == {"recipient": "Lena", "amount": "twenty"}


def test_chat_turn_carries_slots(client):
    body = client.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "send fifty dollars to amir"}], "max_tokens": 2}).json()
    turn = body["dialogtune"]
    assert turn["intent"] == "transfer"
    assert slot_map(turn["slots"]) == {"amount": "fifty", "recipient": "amir"}
    row = next(r for r in db_rows(client.db) if r["id"] == body["id"])
    assert slot_map(json.loads(row["slots"])) == {"amount": "fifty", "recipient": "amir"}


def test_corrected_slots_are_checked_against_the_text(client):
    (result,) = client.post("/v1/intents", json={"text": "check my savings balance"}
                            ).json()["data"]
    for slots, message in (([{"slot": "account", "start": 9, "end": 30}], "outside the text"),
                           ([{"slot": "account", "start": 9, "end": 12}], "cuts a word"),
                           ([{"slot": "account", "start": 9, "end": 16},
                             {"slot": "x", "start": 12, "end": 16}], "overlaps")):
        bad = client.post("/v1/feedback", json={"completion_id": result["id"],
                                                "corrected_slots": slots})
        assert bad.status_code == 400, bad.text
        error = bad.json()["error"]
        assert error["code"] == "invalid_slots" and message in error["message"]
    missing = client.post("/v1/feedback", json={"completion_id": "intent-nope",
                                                "corrected_slots": []})
    assert missing.status_code == 404
    schema = client.post("/v1/feedback", json={"completion_id": result["id"],
                                               "corrected_slots": [{"slot": "a", "start": -1,
                                                                    "end": 2}]})
    assert schema.status_code == 400


def test_corrected_slots_round_trip_to_nlu_export(client, tmp_path, capsys):
    texts = ["transfer ten dollars to omar", "check my business balance",
             "send hundred dollars to sara"]
    fixed, kept, dropped = client.post("/v1/intents", json={"texts": texts}).json()["data"]
    # a person relabels the slots (and the intent) of the first, vouches for the second
    corrected = [{"slot": "amount", "start": 9, "end": 12},
                 {"slot": "payee", "start": 24, "end": 28}]
    ok = client.post("/v1/feedback", json={"completion_id": fixed["id"],
                                           "corrected_intent": "pay",
                                           "corrected_slots": corrected})
    assert ok.status_code == 200, ok.text
    assert client.post("/v1/feedback", json={"completion_id": kept["id"],
                                             "rating": "up"}).status_code == 200
    assert client.post("/v1/feedback", json={"completion_id": dropped["id"],
                                             "rating": "down"}).status_code == 200
    (row,) = [r for r in db_rows(client.db, "feedback") if r["completion_id"] == fixed["id"]]
    assert json.loads(row["corrected_slots"]) == corrected

    out = tmp_path / "nlu.jsonl"
    assert main(["data", "export-logs", str(client.db), "--output", str(out),
                 "--format", "nlu", "--reviewed-only"]) == 0
    assert "wrote 2 nlu examples" in capsys.readouterr().out
    examples = {e.text: e for e in read_nlu_examples(out)}  # reads back as training data
    assert set(examples) == {texts[0], texts[1]}
    first = examples[texts[0]]
    assert first.intent == "pay"
    assert [(s.slot, first.value(s)) for s in first.slots] == [("amount", "ten"),
                                                               ("payee", "omar")]
    second = examples[texts[1]]
    assert second.intent == "balance"
    assert [(s.slot, second.value(s)) for s in second.slots] == [("account", "business")]


def test_old_logs_gain_the_slot_columns(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:
        old.executescript(
            "CREATE TABLE exchanges (id TEXT PRIMARY KEY, created REAL NOT NULL, kind TEXT "
            "NOT NULL, model TEXT, messages TEXT NOT NULL, reply TEXT, intent TEXT, "
            "confidence REAL, out_of_scope INTEGER NOT NULL DEFAULT 0, fallback INTEGER NOT "
            "NULL DEFAULT 0, latency_ms REAL, params TEXT);"
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, completion_id TEXT "
            "NOT NULL, created REAL NOT NULL, rating TEXT, corrected_reply TEXT, "
            "corrected_intent TEXT, comment TEXT);"
            "INSERT INTO exchanges VALUES ('old', 1, 'intent', 'm', "
            "'[{\"role\": \"user\", \"content\": \"send ten dollars\"}]', NULL, 'transfer', "
            "0.9, 0, 0, 1, '{}');"
            "INSERT INTO feedback (completion_id, created, rating) VALUES ('old', 2, 'up');")
    (item,) = read_reviewed(db)  # read-only, not migrated: no slots yet
    assert item.exchange.slots is None and item.corrected_slots is None
    store = ConversationStore(db)
    store.log(Exchange("new", "intent", [{"role": "user", "content": "send ten dollars"}],
                       intent="transfer", slots=[{"slot": "amount", "start": 5, "end": 8}]))
    store.add_feedback("old", corrected_slots=[{"slot": "amount", "start": 5, "end": 8}])
    assert store.user_text("old") == "send ten dollars"
    store.close()
    reviewed = {r.exchange.id: r for r in read_reviewed(db)}
    assert reviewed["old"].corrected_slots == [{"slot": "amount", "start": 5, "end": 8}]
    assert reviewed["new"].exchange.slots == [{"slot": "amount", "start": 5, "end": 8}]


def test_web_chat_shows_the_turn_slots():
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert "turn.slots" in script and "chip.textContent" in script
    assert "innerHTML" not in script.split("function showIntent", 1)[1].split("\n}\n", 1)[0]
