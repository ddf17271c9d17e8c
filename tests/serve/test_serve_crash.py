"""A real crash: ``dialogtune serve`` is SIGKILLed under load, and every exchange a client
was answered for (a 200 with its body, or a stream up to ``[DONE]``) is in the log.

The server commits each exchange before it sends the response's end, so the kill cannot
come between the client's answer and the row; SIGKILL runs no shutdown code, so only what
was committed counts (no WAL checkpoint, no drain).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx

from dialogtune.data.conversation_log import read_reviewed
from helpers import free_port, wait_healthy

ACKED_BEFORE_KILL = 40


def _one_request(http: httpx.Client, i: int) -> list[str]:
    """Send request i (intents, plain chat or streamed chat); the ids it was answered for."""
    if i % 3 == 0:
        response = http.post("/v1/intents", json={"texts": [f"send money {i}", "balance"]})
        return [r["id"] for r in response.json()["data"]] if response.status_code == 200 else []
    body = {"messages": [{"role": "user", "content": f"check my balance {i}"}],
            "max_tokens": 4, "stream": i % 3 == 2}
    if not body["stream"]:
        response = http.post("/v1/chat/completions", json=body)
        return [response.json()["id"]] if response.status_code == 200 else []
    ids, done = [], False
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
            elif data.startswith("{") and "id" in (event := json.loads(data)):
                ids.append(event["id"])
    return ids[:1] if done and response.status_code == 200 else []


def _load(url: str, acked: list[str], stop: threading.Event, counter) -> None:
    """Send requests back to back until told to stop; record each answered exchange."""
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                acked.extend(_one_request(http, next(counter)))
            except (httpx.HTTPError, json.JSONDecodeError, KeyError):
                pass  # cut off by the kill: not acknowledged, so not counted




def test_sigkill_under_load_keeps_every_acknowledged_exchange(intent_run, chat_model,
                                                               tmp_path):
    db, port = tmp_path / "log.db", free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as server_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dialogtune.cli", "serve", "--intent", str(intent_run),
             "--chat", str(chat_model), "--port", str(port), "--log-db", str(db)],
            stdout=server_log, stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    acked: list[str] = []
    stop, counter = threading.Event(), itertools.count()
    clients = [threading.Thread(target=_load, args=(url, acked, stop, counter))
               for _ in range(6)]
    try:
        wait_healthy(url, process)
        for client in clients:
            client.start()
        deadline = time.monotonic() + 120
        while len(acked) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # mid-load: requests are in flight
        assert process.wait(30) == -signal.SIGKILL
    finally:
        stop.set()
        for client in clients:
            client.join(60)
        if process.poll() is None:
            process.kill()
    assert len(acked) >= ACKED_BEFORE_KILL, (tmp_path / "server.log").read_text()[-2000:]
    logged = {item.exchange.id for item in read_reviewed(db)}  # read-only, WAL not merged
    missing = [i for i in acked if i not in logged]
    assert not missing, f"{len(missing)} of {len(acked)} answered exchanges lost: {missing[:5]}"
    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.close()
