"""The conversation log: every served exchange and its feedback, in one SQLite file.

WAL mode and one commit per row mean a row is on disk before its response is finished,
so a SIGTERM (or a crash) after a reply never loses that exchange; readers such as
``dialogtune data export-logs`` can open the file while the server writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    kind TEXT NOT NULL,              -- 'chat' or 'intent'
    model TEXT,
    messages TEXT NOT NULL,          -- JSON list of the request's {"role", "content"}
    reply TEXT,
    intent TEXT,
    confidence REAL,
    out_of_scope INTEGER NOT NULL DEFAULT 0,
    fallback INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL,
    params TEXT                      -- JSON of the generation settings
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    completion_id TEXT NOT NULL REFERENCES exchanges(id),
    created REAL NOT NULL,
    rating TEXT,                     -- 'up' | 'down' | NULL
    corrected_reply TEXT,
    corrected_intent TEXT,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_completion ON feedback(completion_id);
"""


@dataclass
class Exchange:
    """One logged request/reply pair (a chat completion or one classified utterance)."""

    id: str
    kind: str
    messages: list[dict]
    reply: str | None = None
    model: str | None = None
    intent: str | None = None
    confidence: float | None = None
    out_of_scope: bool = False
    fallback: bool = False
    latency_ms: float | None = None
    params: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)


@dataclass
class Reviewed:
    """An exchange with its feedback folded in (the latest value of each field wins)."""

    exchange: Exchange
    rating: str | None = None
    corrected_reply: str | None = None
    corrected_intent: str | None = None


class ConversationStore:
    """Thread-safe writer for the log; one connection, serialized by a lock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes
        self._db.executescript(SCHEMA)
        self._db.commit()

    def log(self, row: Exchange) -> None:
        """Insert one exchange and commit at once."""
        self.log_many([row])

    def log_many(self, rows: list[Exchange]) -> None:
        """Insert exchanges in one transaction, committed before returning."""
        values = [(r.id, r.created, r.kind, r.model, json.dumps(r.messages), r.reply, r.intent,
                   r.confidence, int(r.out_of_scope), int(r.fallback), r.latency_ms,
                   json.dumps(r.params)) for r in rows]
        with self._lock:
            if self._db is None:
                raise RuntimeError("the conversation log is closed")
            self._db.executemany("INSERT INTO exchanges VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                 values)
            self._db.commit()

    def add_feedback(self, completion_id: str, rating: str | None = None,
                     corrected_reply: str | None = None, corrected_intent: str | None = None,
                     comment: str | None = None) -> int:
        """Record feedback on a logged exchange; KeyError when the id is unknown."""
        with self._lock:
            found = self._db.execute("SELECT 1 FROM exchanges WHERE id = ?",
                                     (completion_id,)).fetchone()
            if not found:
                raise KeyError(completion_id)
            cursor = self._db.execute(
                "INSERT INTO feedback (completion_id, created, rating, corrected_reply, "
                "corrected_intent, comment) VALUES (?,?,?,?,?,?)",
                (completion_id, time.time(), rating, corrected_reply, corrected_intent, comment))
            self._db.commit()
            return int(cursor.lastrowid)

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                return self._db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM exchanges WHERE kind = ?",
                                    (kind,)).fetchone()[0]

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close; safe to call twice."""
        with self._lock:
            if self._db is None:
                return
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None


def read_reviewed(path: str | Path) -> list[Reviewed]:
    """Every logged exchange, oldest first, with its feedback folded in (read-only open)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("log database not found", str(path))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM exchanges ORDER BY created, rowid").fetchall()
            notes = db.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"not a dialogtune log database ({exc})", str(path)) from None
    finally:
        db.close()
    reviewed = {row["id"]: Reviewed(_exchange(row)) for row in rows}
    for note in notes:
        target = reviewed.get(note["completion_id"])
        if target is None:
            continue
        for name in ("rating", "corrected_reply", "corrected_intent"):
            if note[name] is not None:
                setattr(target, name, note[name])
    return list(reviewed.values())


def _exchange(row: sqlite3.Row) -> Exchange:
    return Exchange(id=row["id"], kind=row["kind"], messages=json.loads(row["messages"]),
                    reply=row["reply"], model=row["model"], intent=row["intent"],
                    confidence=row["confidence"], out_of_scope=bool(row["out_of_scope"]),
                    fallback=bool(row["fallback"]), latency_ms=row["latency_ms"],
                    params=json.loads(row["params"] or "{}"), created=row["created"])
