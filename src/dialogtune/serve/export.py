"""Logged conversations → training data for the next fine-tune (the feedback loop).

Corrections replace what the server said; a thumbs-down without a correction drops the
example. Chat JSONL marks earlier assistant turns ``weight: 0`` so a fine-tune learns
only the logged (or corrected) reply, with the conversation before it as context.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..errors import DialogtuneError
from .store import Reviewed, read_reviewed

FORMATS = ("chat", "intent")


def chat_example(item: Reviewed) -> dict | None:
    """One chat-format record, or None when the exchange should not be trained on."""
    ex = item.exchange
    reply = item.corrected_reply or ex.reply
    if ex.kind != "chat" or not reply or (item.rating == "down" and not item.corrected_reply):
        return None
    messages = [_history_turn(m) for m in ex.messages]
    label = item.corrected_intent or (None if ex.out_of_scope else ex.intent)
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is not None and label:
        messages[last_user]["intent"] = label
    messages.append({"role": "assistant", "content": reply})
    return {"id": ex.id, "messages": messages}


def _history_turn(message: dict) -> dict:
    turn = {"role": message["role"], "content": message["content"]}
    if turn["role"] == "assistant":
        turn["weight"] = 0  # context only: the reviewed reply is the training target
    return turn


def intent_example(item: Reviewed) -> tuple[str, str] | None:
    """(text, label) for the exchange's last user turn, or None when it has no sure label."""
    ex = item.exchange
    users = [m["content"] for m in ex.messages if m["role"] == "user"]
    if not users or not users[-1].strip():
        return None
    if item.corrected_intent:
        return users[-1], item.corrected_intent
    if item.rating == "down" or ex.out_of_scope or not ex.intent:
        return None
    return users[-1], ex.intent


def export_logs(db: str | Path, output: str | Path, fmt: str = "chat") -> int:
    """Write the reviewed log as chat JSONL or intent CSV; returns the examples written."""
    if fmt not in FORMATS:
        raise DialogtuneError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    reviewed = read_reviewed(db)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    if fmt == "chat":
        rows = [r for r in map(chat_example, reviewed) if r is not None]
        staging.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                           encoding="utf-8")
    else:
        rows = [r for r in map(intent_example, reviewed) if r is not None]
        with staging.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    os.replace(staging, output)
    return len(rows)
