"""Logged conversations → training data for the next fine-tune (the feedback loop).

Corrections replace what the server said; a thumbs-down without a correction drops the
example. Chat JSONL marks earlier assistant turns ``weight: 0`` so a fine-tune learns
only the logged (or corrected) reply, with the conversation before it as context.
Tool-calling exchanges come back as tool-calling data in the form the dialogue reader
reads: the functions offered as the record's ``tools``, earlier calls (``tool_calls``) and
results (role ``tool``) as context, and the reply's own calls as the trained turn (a
corrected reply replaces words and calls alike).
Preference data (``preference``): a corrected reply becomes a pair (chosen = the
correction, rejected = what the bot said); a thumbs up or down without a correction becomes
an unpaired KTO row (``completion`` + ``label``); unrated exchanges are left out.
``reviewed_only`` keeps just what a person vouched for (a thumbs-up or a correction, and for
preference a thumbs-down too): the safe input for retraining, since unreviewed replies are
the model's own guesses.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ...atomic import atomic_path
from ...errors import DialogtuneError
from ..conversation_log import Reviewed, read_reviewed
from ..files import escape_cell

FORMATS = ("chat", "intent", "nlu", "preference")


def chat_example(item: Reviewed) -> dict | None:
    """One chat-format record, or None when the exchange should not be trained on."""
    ex = item.exchange
    reply = _reply_turn(item)
    if ex.kind != "chat" or reply is None or (item.rating == "down"
                                               and not item.corrected_reply):
        return None
    messages = [_history_turn(m) for m in ex.messages]
    label = item.corrected_intent or (None if ex.out_of_scope else ex.intent)
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is not None and label:
        messages[last_user]["intent"] = label
    tools = {"tools": ex.tools} if ex.tools else {}
    return {"id": ex.id, **tools, "messages": [*messages, reply]}


def preference_example(item: Reviewed) -> dict | None:
    """A preference record: a pair for a corrected reply, a KTO row for a bare rating."""
    ex = item.exchange
    said = _reply_turn(item, corrected=False)
    if ex.kind != "chat" or said is None:
        return None
    context = {**({"tools": ex.tools} if ex.tools else {}), "id": ex.id,
               "messages": [_history_turn(m) for m in ex.messages]}
    if item.corrected_reply and item.corrected_reply.strip() != (ex.reply or "").strip():
        return {**context, "chosen": _reply_turn(item), "rejected": said}
    if item.rating in ("up", "down") and not item.corrected_reply:
        return {**context, "completion": said, "label": item.rating == "up"}
    return None


def _reply_turn(item: Reviewed, corrected: bool = True) -> dict | None:
    """The trained assistant turn: the correction (unless ``corrected`` is False), else
    the logged words and calls."""
    if corrected and item.corrected_reply:
        return {"role": "assistant", "content": item.corrected_reply}
    ex = item.exchange
    if not ex.reply and not ex.tool_calls:
        return None
    turn = {"role": "assistant", "content": ex.reply or ""}
    if ex.tool_calls:
        turn["tool_calls"] = ex.tool_calls
    return turn


TOOL_FIELDS = ("tool_calls", "tool_call_id", "name")


def _history_turn(message: dict) -> dict:
    turn = {"role": message["role"], "content": message["content"]}
    turn.update({k: message[k] for k in TOOL_FIELDS if message.get(k) is not None})
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


def nlu_example(item: Reviewed) -> dict | None:
    """An NLU JSONL record (``text``, ``intent``, ``slots``) for the last user turn: the
    intent as ``intent_example`` decides it, the corrected slots when a person gave them,
    else the slots the server predicted (none for a run without slots)."""
    found = intent_example(item)
    if found is None:
        return None
    text, intent = found
    spans = item.corrected_slots if item.corrected_slots is not None \
        else item.exchange.slots or []
    slots = [{"slot": s["slot"], "start": s["start"], "end": s["end"],
              "value": text[s["start"]:s["end"]]} for s in spans]
    return {"text": text, "intent": intent, "slots": slots}


def is_reviewed(item: Reviewed, fmt: str) -> bool:
    """True when a person vouched for what ``fmt`` trains on: a thumbs-up, or a correction
    of that very field (the reply for chat, the intent for intent, intent or slots for
    nlu). For preference a thumbs-down counts too: it is a person's verdict, the negative
    KTO row it becomes."""
    corrected = {"chat": item.corrected_reply, "preference": item.corrected_reply,
                 "intent": item.corrected_intent,
                 "nlu": item.corrected_intent or item.corrected_slots is not None}[fmt]
    rated = ("up", "down") if fmt == "preference" else ("up",)
    return item.rating in rated or bool(corrected)


def export_logs(db: str | Path, output: str | Path, fmt: str = "chat",
                reviewed_only: bool = False) -> int:
    """Write the reviewed log as chat JSONL, intent CSV, NLU JSONL (text, intent, slots)
    or preference JSONL; returns the examples written."""
    if fmt not in FORMATS:
        raise DialogtuneError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    output = Path(output)
    check_output(db, output)
    reviewed = read_reviewed(db)
    if reviewed_only:
        reviewed = [item for item in reviewed if is_reviewed(item, fmt)]
    try:
        with atomic_path(output) as staging, \
                staging.open("w", newline="", encoding="utf-8") as handle:
            rows = _write(handle, reviewed, fmt)
    except OSError as exc:
        raise DialogtuneError(f"{output}: cannot write ({exc.strerror or exc})") from None
    return rows


def _write(handle, reviewed: list[Reviewed], fmt: str) -> int:
    if fmt != "intent":
        example = {"chat": chat_example, "nlu": nlu_example,
                   "preference": preference_example}[fmt]
        rows = [r for r in map(example, reviewed) if r is not None]
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    else:
        rows = [r for r in map(intent_example, reviewed) if r is not None]
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([escape_cell(text), escape_cell(label)] for text, label in rows)
    return len(rows)


def check_output(db: str | Path, output: Path) -> None:
    """Refuse an output that would overwrite the log itself (the database or the SQLite
    files beside it, also through a link) or that is a folder, before anything is written."""
    if output.is_dir():
        raise DialogtuneError(f"--output {output} is a folder; give a file name")
    base = Path(db).resolve()
    protected = {base, *(base.with_name(base.name + end) for end in ("-wal", "-shm", "-journal"))}
    if output.resolve() in protected or _same_file(output, base):
        raise DialogtuneError(f"--output {output} is the log database {db} (or a file "
                                  "SQLite keeps beside it); give another file")


def _same_file(a: Path, b: Path) -> bool:
    """Also catches hard links, which resolve() cannot see."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False

