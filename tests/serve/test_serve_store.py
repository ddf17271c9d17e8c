"""The conversation log (SQLite) and ``data export-logs``: corrections applied,
thumbs-down dropped unless corrected."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading

import pytest

from dialogtune.cli import main
from dialogtune.data.conversation_log import ConversationStore, Exchange, read_reviewed
from dialogtune.data.formats import read_dialogues
from dialogtune.data.transform.log_export import export_logs
from dialogtune.errors import DataError, DialogtuneError


def chat(id_, user, reply, intent="balance", oos=False, history=()):
    messages = [*history, {"role": "user", "content": user}]
    return Exchange(id_, "chat", messages, reply, "tiny", intent, 0.9, oos)


@pytest.fixture
def store(tmp_path):
    log = ConversationStore(tmp_path / "logs" / "log.db")
    yield log
    log.close()


def test_rows_are_committed_at_once_in_wal_mode(store):
    store.log(chat("c1", "hi", "hello"))
    reader = sqlite3.connect(str(store.path))  # another connection sees it without close
    assert reader.execute("SELECT id, reply FROM exchanges").fetchall() == [("c1", "hello")]
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader.close()
    assert store.count() == 1 and store.count("intent") == 0


def test_concurrent_writers_lose_nothing(store):
    def write(worker: int) -> None:
        for i in range(25):
            store.log(chat(f"w{worker}-{i}", "hi", "ok"))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count("chat") == 200


def test_feedback_needs_a_known_id_and_latest_values_win(store):
    store.log(chat("c1", "hi", "hello"))
    with pytest.raises(KeyError):
        store.add_feedback("missing", "up")
    store.add_feedback("c1", "down")
    store.add_feedback("c1", None, corrected_reply="Hi! How can I help?")
    store.add_feedback("c1", "up", comment="fine now")
    (item,) = read_reviewed(store.path)
    assert (item.rating, item.corrected_reply) == ("up", "Hi! How can I help?")
    assert item.exchange.messages == [{"role": "user", "content": "hi"}]


def test_close_is_idempotent_and_refuses_later_writes(store):
    store.close()
    store.close()
    with pytest.raises(RuntimeError):
        store.log(chat("late", "hi", "x"))


def _logged(store):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    store.log(chat("good", "what is my balance", "It is $5.", history=history))
    store.log(chat("bad", "block my card", "Sure, sending money.", intent="card_lost"))
    store.log(chat("fixed", "send money to friend", "No.", intent="balance"))
    store.log(chat("unsure", "tell me a joke", "Ha.", intent="out_of_scope", oos=True))
    store.log(Exchange("i1", "intent", [{"role": "user", "content": "show balance"}],
                       intent="balance", confidence=0.8))
    store.add_feedback("good", "up")
    store.add_feedback("bad", "down")
    store.add_feedback("fixed", "down", corrected_reply="Who should I send it to?",
                       corrected_intent="transfer")


def test_export_chat_jsonl_reads_back_as_training_data(store, tmp_path):
    _logged(store)
    out = tmp_path / "out" / "chat.jsonl"
    assert export_logs(store.path, out, "chat") == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["good", "fixed", "unsure"]
    good = rows[0]["messages"]
    assert good[1] == {"role": "assistant", "content": "hello", "weight": 0}
    assert good[2] == {"role": "user", "content": "what is my balance", "intent": "balance"}
    assert good[-1] == {"role": "assistant", "content": "It is $5."}
    assert rows[1]["messages"][-1]["content"] == "Who should I send it to?"
    assert rows[1]["messages"][0]["intent"] == "transfer"
    assert "intent" not in rows[2]["messages"][0]  # out-of-scope guess is not a label
    dialogues = read_dialogues(out)  # the project's own reader accepts the export
    assert len(dialogues) == 3 and dialogues[0].messages[1].weight == 0


def test_export_intent_csv(store, tmp_path):
    _logged(store)
    out = tmp_path / "intents.csv"
    assert export_logs(store.path, out, "intent") == 3
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["text", "label"], ["what is my balance", "balance"],
                    ["send money to friend", "transfer"], ["show balance", "balance"]]


def test_export_errors(tmp_path, store):
    with pytest.raises(DataError, match="not found"):
        export_logs(tmp_path / "missing.db", tmp_path / "x.jsonl")
    with pytest.raises(DialogtuneError, match="unknown format"):
        export_logs(store.path, tmp_path / "x.jsonl", "yaml")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError):
        export_logs(junk, tmp_path / "x.jsonl")


def test_export_logs_command(store, tmp_path, capsys):
    _logged(store)
    out = tmp_path / "cli.csv"
    assert main(["data", "export-logs", str(store.path), "--output", str(out),
                 "--format", "intent"]) == 0
    assert "wrote 3 intent examples" in capsys.readouterr().out
    assert out.read_text().startswith("text,label")
    assert main(["data", "export-logs", str(tmp_path / "none.db"), "--output",
                 str(out)]) == 2
    assert "log database not found" in capsys.readouterr().err


def test_export_intent_csv_escapes_formulas_and_reads_back(store, tmp_path):
    """A user who typed a spreadsheet formula must not get it run when the export is opened;
    the project's own reader gives back the text as typed."""
    from dialogtune.data.formats import read_intents

    store.log(Exchange("f1", "intent", [{"role": "user", "content": "=cmd|' /C calc'!A0"}],
                       intent="balance", confidence=0.9))
    store.log(Exchange("f2", "intent", [{"role": "user", "content": "-5 on my balance?"}],
                       intent="balance", confidence=0.9))
    store.add_feedback("f1", "up")
    store.add_feedback("f2", "up")
    out = tmp_path / "intents.csv"
    assert export_logs(store.path, out, "intent") == 2
    with out.open(newline="") as handle:
        cells = [row[0] for row in csv.reader(handle)][1:]
    assert cells == ["'=cmd|' /C calc'!A0", "'-5 on my balance?"]
    texts = [r.text for r in read_intents(str(out), None, None, require_labels=1)]
    assert texts == ["=cmd|' /C calc'!A0", "-5 on my balance?"]
    assert not list(tmp_path.glob(".*.tmp"))  # the staging file is gone
