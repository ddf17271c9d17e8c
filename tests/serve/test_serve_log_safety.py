"""The conversation log as training data, kept safe: ``export-logs`` never overwrites the
log, odd file names open the right file read-only, the file is private (0600), old logs
still open, feedback says where it came from, and ``--reviewed-only`` exports only what a
person vouched for."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3

import pytest
from fastapi.testclient import TestClient

from dialogtune.cli import main
from dialogtune.data.conversation_log import (ConversationStore, Exchange, Provenance,
                                              read_reviewed)
from dialogtune.data.transform.log_export import export_logs
from dialogtune.errors import DialogtuneError
from dialogtune.serve import ServeSettings, create_app
from helpers import db_rows

OLD_SCHEMA = """
CREATE TABLE exchanges (id TEXT PRIMARY KEY, created REAL NOT NULL, kind TEXT NOT NULL,
    model TEXT, messages TEXT NOT NULL, reply TEXT, intent TEXT, confidence REAL,
    out_of_scope INTEGER NOT NULL DEFAULT 0, fallback INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL, params TEXT);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT,
    completion_id TEXT NOT NULL REFERENCES exchanges(id), created REAL NOT NULL,
    rating TEXT, corrected_reply TEXT, corrected_intent TEXT, comment TEXT);
CREATE INDEX feedback_completion ON feedback(completion_id);
"""


def chat(id_, user, reply, intent="balance"):
    return Exchange(id_, "chat", [{"role": "user", "content": user}], reply, "tiny", intent, 0.9)


def make_log(path, rows=2):
    store = ConversationStore(path)
    for i in range(rows):
        store.log(chat(f"c{i}", f"hello {i}", f"reply {i}"))
    return store


def snapshot(folder):
    """Every file under folder with its content hash: proves nothing was written."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.iterdir())}


# --- export-logs never overwrites the log ----------------------------------------------

def _targets(tmp_path, db):
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    (tmp_path / "folder").mkdir()
    return {"itself": db, "relative": os.path.relpath(db), "symlink": tmp_path / "link.db",
            "hardlink": tmp_path / "hard.db", "wal": f"{db}-wal", "shm": f"{db}-shm",
            "journal": f"{db}-journal", "folder": tmp_path / "folder"}


@pytest.mark.parametrize("target", ["itself", "relative", "symlink", "hardlink", "wal", "shm",
                                    "journal", "folder"])
def test_export_refuses_the_database_and_folders(tmp_path, monkeypatch, capsys, target):
    monkeypatch.chdir(tmp_path)
    store = make_log(tmp_path / "log.db")  # open: the -wal and -shm exist
    store.add_feedback("c0", "up")
    output = _targets(tmp_path, tmp_path / "log.db")[target]
    before = snapshot(tmp_path)
    with pytest.raises(DialogtuneError, match="log database|is a folder"):
        export_logs(tmp_path / "log.db", output)
    code = main(["data", "export-logs", "log.db", "--output", str(output)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # nothing written, no stray .tmp, log intact
    store.close()
    assert [r.exchange.id for r in read_reviewed(tmp_path / "log.db")] == ["c0", "c1"]


def test_export_through_a_folder_that_is_a_file_is_one_line(tmp_path):
    store = make_log(tmp_path / "log.db")
    store.close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DialogtuneError, match="cannot write"):
        export_logs(tmp_path / "log.db", tmp_path / "file" / "out.jsonl")


# --- read-only open by a proper file URI -------------------------------------------------

@pytest.mark.parametrize("name", ["log#1.db", "log?x=1.db", "100%.db", "a b.db"])
def test_odd_names_open_the_real_file_read_only(tmp_path, name):
    folder = tmp_path / "logs"
    store = make_log(folder / name, rows=3)
    store.close()
    assert sorted(os.listdir(folder)) == [name]
    out = tmp_path / "out.jsonl"
    assert export_logs(folder / name, out) == 3
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == \
        ["c0", "c1", "c2"]
    # only SQLite's own companions of the real file may appear; no other database
    assert set(os.listdir(folder)) <= {name, f"{name}-wal", f"{name}-shm"}


# --- a private file, durable commits, old logs ------------------------------------------

def test_log_and_its_wal_files_are_created_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask, under which files are world-readable
    try:
        store = make_log(tmp_path / "log.db")
    finally:
        os.umask(old)
    try:
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(tmp_path / f"log.db{suffix}").st_mode & 0o777
            assert mode == 0o600, (suffix, oct(mode))
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_a_log_written_by_the_old_schema_opens_and_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO exchanges VALUES ('c0', 1.0, 'chat', 'm', "
               "'[{\"role\": \"user\", \"content\": \"hi\"}]', 'hello', NULL, NULL, 0, 0, 1.0, "
               "'{}')")
    db.execute("INSERT INTO feedback (completion_id, created, rating) VALUES ('c0', 2.0, 'up')")
    db.commit()
    db.close()
    assert [r.rating for r in read_reviewed(path)] == ["up"]  # read-only: not migrated
    store = ConversationStore(path)
    store.add_feedback("c0", None, "hello there", provenance=Provenance("api", "10.0.0.1"))
    store.close()
    rows = db_rows(path, "feedback")
    assert [(r["rating"], r["source"], r["client"]) for r in rows] == \
        [("up", None, None), (None, "api", "10.0.0.1")]
    assert read_reviewed(path)[0].corrected_reply == "hello there"


# --- feedback provenance and limits -------------------------------------------------------

@pytest.fixture
def feedback_client(tmp_path):
    path = tmp_path / "log.db"
    make_log(path).close()
    settings = ServeSettings(log_db=str(path), api_key="sekrit-key", max_correction_chars=20)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        client.headers["Authorization"] = "Bearer sekrit-key"
        client.db = path
        yield client


def test_feedback_records_where_it_came_from(feedback_client):
    assert feedback_client.post("/v1/feedback", json={"completion_id": "c0", "rating": "up"}
                                ).status_code == 200
    web = feedback_client.post("/v1/feedback", json={"completion_id": "c1", "rating": "down"},
                               headers={"Origin": "http://127.0.0.1:8000"})
    assert web.status_code == 200
    rows = db_rows(feedback_client.db, "feedback")
    assert [(r["source"], r["origin"]) for r in rows] == \
        [("api", None), ("web", "http://127.0.0.1:8000")]
    assert all(r["client"] and r["created"] > 0 for r in rows)
    fingerprint = hashlib.sha256(b"sekrit-key").hexdigest()[:16]
    assert {r["key_fingerprint"] for r in rows} == {fingerprint}
    assert b"sekrit-key" not in feedback_client.db.read_bytes()


def test_corrected_reply_is_capped(feedback_client):
    ok = {"completion_id": "c0", "corrected_reply": "x" * 20}
    assert feedback_client.post("/v1/feedback", json=ok).status_code == 200
    long = feedback_client.post("/v1/feedback", json={**ok, "corrected_reply": "x" * 21})
    assert long.status_code == 400
    assert long.json()["error"]["param"] == "corrected_reply"
    assert len(db_rows(feedback_client.db, "feedback")) == 1


# --- --reviewed-only ---------------------------------------------------------------------

def _reviewed_log(path):
    store = make_log(path, rows=0)
    for id_ in ("up", "down", "fixed", "relabelled", "silent"):
        store.log(chat(id_, f"text {id_}", f"reply {id_}"))
    store.add_feedback("up", "up")
    store.add_feedback("down", "down")
    store.add_feedback("fixed", "down", corrected_reply="better reply")
    store.add_feedback("relabelled", None, corrected_intent="transfer")
    store.close()


def test_reviewed_only_exports_what_a_person_vouched_for(tmp_path, capsys):
    _reviewed_log(tmp_path / "log.db")
    out = tmp_path / "chat.jsonl"
    assert main(["data", "export-logs", str(tmp_path / "log.db"), "--output", str(out),
                 "--reviewed-only"]) == 0
    assert "wrote 2 chat examples" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["messages"][-1]["content"]) for r in rows] == \
        [("up", "reply up"), ("fixed", "better reply")]  # a corrected intent vouches no reply
    csv_out = tmp_path / "intents.csv"
    assert export_logs(tmp_path / "log.db", csv_out, "intent", reviewed_only=True) == 2
    with csv_out.open(newline="") as handle:
        assert list(csv.reader(handle))[1:] == [["text up", "balance"],
                                                ["text relabelled", "transfer"]]
    assert export_logs(tmp_path / "log.db", out) == 4  # the default keeps unreviewed ones
