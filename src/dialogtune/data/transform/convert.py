"""``dialogtune data convert``: intent CSV ⇄ intent JSONL (and Rasa NLU import), and
chat ⇄ ShareGPT ⇄ Alpaca ⇄ OpenAI fine-tuning JSONL for dialogues.

What each target keeps, and what it drops (every drop is reported with its lines):

- ``csv`` / ``jsonl`` (intent): text and label; other columns are dropped.
- ``chat``: everything (dialogue fields, per-turn fields, weights).
- ``sharegpt``: everything; roles become human/gpt/system turns, weights and per-turn
  fields stay on each turn. Tool calling as LLaMA-Factory writes it: ``tools`` as a JSON
  string of function objects, an assistant's calls as a ``function_call`` turn whose value
  is the JSON call (a list for several; each keeps its ``id``), results as ``observation``
  turns keeping ``tool_call_id`` and ``name``. An assistant turn that both speaks and calls
  becomes a ``gpt`` turn then a ``function_call`` turn (noted).
- ``openai``: only role, content and weight on assistant turns, as the hosted fine-tuning
  APIs accept, plus what they accept for tool calling: ``tools``, an assistant's
  ``tool_calls`` (content null when it only calls) and ``tool`` messages with their
  ``tool_call_id``; other dialogue and per-turn fields are dropped, and dialogues without
  an assistant turn are skipped (the API rejects them).
- ``alpaca``: the last user → assistant exchange becomes instruction → output, a leading
  system turn becomes ``system``, and earlier user/assistant pairs go to ``history``
  (LLaMA-Factory's convention, expanded again when dialogtune reads alpaca for
  conversion). Turns that do not pair up, turns after the last reply, per-turn fields and
  weights are dropped; a dialogue with no user → assistant exchange is skipped. The
  alpaca ``input`` is merged into the user turn as dialogtune's reader does, so it is
  written empty.

Intent data cannot become dialogues (it has no replies) and dialogues cannot become
intent data: those conversions stop with a clear error.

Joint intent + slot data converts between its four formats with ``--to nlu-jsonl``,
``rasa``, ``conll`` or ``dialogue`` (``nlu_convert``); intent data converts to them with
no slots, and NLU data to ``csv`` / ``jsonl`` keeps text and intent (slots dropped, noted).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import DataError
from ..formats import Loaded, read
from ..formats.dialogue import dialogue_to_chat_json
from ..formats.nlu import looks_like_nlu
from ..quality.tools import refuse_unlinked_results
from ..records import Dialogue, Message
from ..tool_calls import calls_from_openai, function_specs
from .nlu_convert import NLU_TARGETS, convert_nlu, read_nlu_for_conversion
from .writers import refuse_same_file, write_csv, write_jsonl

INTENT_TARGETS = ("csv", "jsonl")
DIALOGUE_TARGETS = ("chat", "sharegpt", "alpaca", "openai")
SHAREGPT_FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


@dataclass
class Dropped:
    """What a conversion left out: reason → lines, reported after writing."""

    reasons: dict[str, list] = field(default_factory=lambda: defaultdict(list))

    def add(self, reason: str, line) -> None:
        self.reasons[reason].append(line)

    def notes(self) -> list[str]:
        out = []
        for reason, lines in self.reasons.items():
            shown = ", ".join(str(n) for n in lines[:8]) + (", …" if len(lines) > 8 else "")
            out.append(f"{reason}: {len(lines)} record(s) (lines {shown})")
        return out


def read_for_conversion(path: str | Path) -> Loaded:
    """Read any supported input; the first unreadable row stops it (run ``data fix`` first)."""
    loaded = read(path, strict=False)
    loaded.refuse_unreadable(loaded.utterances, "dialogtune data fix drops unreadable rows",
                             loaded.text_key)
    if loaded.kind == "dialogue":
        refuse_unlinked_results(loaded)
        loaded.dialogues = [_normalise_dialogue(d, loaded.format) for d in loaded.dialogues]
    return loaded


def _normalise_dialogue(dialogue: Dialogue, fmt: str) -> Dialogue:
    """Undo what other formats store outside the turns: alpaca history, ShareGPT weights."""
    if fmt == "sharegpt":
        for m in dialogue.messages:
            if m.weight is None and m.extra.get("weight") in (0, 1):
                m.weight = m.extra.pop("weight")
    history = dialogue.extra.get("history")
    if fmt == "alpaca" and isinstance(history, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p)
            for p in history):
        start = 1 if dialogue.messages and dialogue.messages[0].role == "system" else 0
        turns = [Message(role, text) for pair in history
                 for role, text in zip(("user", "assistant"), pair)]
        dialogue.messages[start:start] = turns
        dialogue.extra = {k: v for k, v in dialogue.extra.items() if k != "history"}
    return dialogue


def convert_loaded(loaded: Loaded, to: str) -> tuple[list, list[str]]:
    """(records in the target format, notes on what was dropped)."""
    if to not in INTENT_TARGETS + DIALOGUE_TARGETS + NLU_TARGETS:
        raise DataError(f"unknown target format '{to}'; choose one of "
                        f"{', '.join(INTENT_TARGETS + DIALOGUE_TARGETS + NLU_TARGETS)}")
    if to in NLU_TARGETS:
        raise DataError(f"'{to}' is written by convert_file (NLU data)")
    if loaded.kind == "intent" and to in DIALOGUE_TARGETS:
        raise DataError(f"intent data (text, label) has no assistant replies, so it cannot "
                        f"become '{to}' dialogues; choose csv or jsonl", loaded.path)
    if loaded.kind == "dialogue" and to in INTENT_TARGETS:
        raise DataError(f"dialogues have no intent labels to write as '{to}'; choose one of "
                        f"{', '.join(DIALOGUE_TARGETS)}", loaded.path)
    dropped = Dropped()
    if loaded.kind == "intent":
        return _intents(loaded, to, dropped), dropped.notes()
    writer = {"chat": lambda d, _: dialogue_to_chat_json(d), "sharegpt": to_sharegpt,
              "alpaca": to_alpaca, "openai": to_openai}[to]
    records = [writer(d, dropped) for d in loaded.dialogues]
    return [r for r in records if r is not None], dropped.notes()


def _intents(loaded: Loaded, to: str, dropped: Dropped) -> list:
    keep = {loaded.text_key, loaded.label_key}
    for record, raw in zip(loaded.utterances, loaded.raws):
        names = loaded.header if isinstance(raw, list) else list(raw or {})
        extra = [n for n in names or [] if n not in keep]
        if extra:
            dropped.add(f"dropped column(s) {', '.join(extra)}", record.line)
    if to == "csv":
        return [[r.text, r.label] for r in loaded.utterances]
    return [{"text": r.text, "label": r.label} for r in loaded.utterances]


def to_sharegpt(dialogue: Dialogue, dropped: Dropped | None = None) -> dict:
    """Lossless: every turn becomes {from, value, ...its other fields} (tool calling as the
    module doc says)."""
    turns = []
    for m in dialogue.messages:
        extra = {k: v for k, v in m.extra.items() if k != "tool_calls"}
        weight = {"weight": m.weight} if m.weight is not None else {}
        calls = m.extra.get("tool_calls")
        if calls and m.content.strip() and dropped is not None:
            dropped.add("a turn that speaks and calls became a gpt and a function_call turn",
                        dialogue.line)
        if m.content.strip() or not calls:
            turns.append({**extra, "from": SHAREGPT_FROM[m.role], "value": m.content, **weight})
        if calls:
            turns.append({**extra, "from": "function_call", "value": sharegpt_call_value(calls),
                          **weight})
    record = {**dialogue.extra, "conversations": turns}
    if dialogue.extra.get("tools"):
        record["tools"] = json.dumps(list(function_specs(dialogue.extra["tools"]).values()),
                                     ensure_ascii=False)
    return record


def sharegpt_call_value(tool_calls: list[dict]) -> str:
    """A ``function_call`` turn's value: ``{"id", "name", "arguments"}`` (arguments an
    object, as LLaMA-Factory writes them), a list when the turn makes several calls."""
    calls = [{**({"id": c.id} if c.id else {}), "name": c.name, "arguments": c.arguments}
             for c in calls_from_openai(tool_calls)]
    return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)


OPENAI_TOOL_FIELDS = {"assistant": ("tool_calls",), "tool": ("tool_call_id",)}


def to_openai(dialogue: Dialogue, dropped: Dropped) -> dict | None:
    """{"messages": [...]} with role, content, and weight on assistant turns only."""
    if not any(m.role == "assistant" for m in dialogue.messages):
        dropped.add("skipped: no assistant turn (the fine-tuning API rejects it)", dialogue.line)
        return None
    other = [k for k in dialogue.extra if k != "tools"]
    if other:
        dropped.add(f"dropped dialogue field(s) {', '.join(other)}", dialogue.line)
    messages = []
    for m in dialogue.messages:
        kept = OPENAI_TOOL_FIELDS.get(m.role, ())
        item = {"role": m.role, "content": m.content,
                **{k: m.extra[k] for k in kept if m.extra.get(k)}}
        if item.get("tool_calls") and not m.content:
            item["content"] = None
        if m.weight is not None and m.role == "assistant":
            item["weight"] = m.weight
        elif m.weight is not None:
            dropped.add(f"dropped weight on a {m.role} turn", dialogue.line)
        # a result's "name" is its call's: the link (tool_call_id) keeps it
        extra = sorted(k for k in m.extra if k not in kept and (m.role, k) != ("tool", "name"))
        if extra:
            dropped.add(f"dropped turn field(s) {', '.join(extra)}", dialogue.line)
        messages.append(item)
    tools = dialogue.extra.get("tools")
    return {**({"tools": tools} if tools else {}), "messages": messages}


def to_alpaca(dialogue: Dialogue, dropped: Dropped) -> dict | None:
    """Last exchange → instruction/output, earlier pairs → history; see the module doc."""
    msgs = dialogue.messages
    system = msgs[0].content if msgs and msgs[0].role == "system" else None
    talk = msgs[1:] if system is not None else msgs
    last = max((i for i, m in enumerate(talk) if m.role == "assistant"), default=None)
    if last is None or last == 0 or talk[last - 1].role != "user":
        dropped.add("skipped: no user → assistant exchange", dialogue.line)
        return None
    if last + 1 < len(talk):
        dropped.add("dropped turns after the last assistant reply", dialogue.line)
    earlier = talk[:last - 1]
    pairs = [[earlier[i].content, earlier[i + 1].content] for i in range(0, len(earlier) - 1, 2)]
    roles = [m.role for m in earlier]
    if len(earlier) % 2 or roles != ["user", "assistant"] * (len(earlier) // 2):
        dropped.add("dropped earlier turns that are not user/assistant pairs", dialogue.line)
        pairs = []
    if any(m.weight is not None or m.extra for m in msgs):
        dropped.add("dropped per-turn fields and weights", dialogue.line)
    record = {**dialogue.extra, "instruction": talk[last - 1].content, "input": "",
              "output": talk[last].content}
    if system is not None:
        record["system"] = system
    if pairs:
        record["history"] = pairs
    return record


def _nlu_to_intents(source: str | Path, to: str, target: str | Path) -> tuple[int, list[str]]:
    """Slot-annotated data as intent data: text and intent kept, slots dropped (noted)."""
    loaded, dropped = read_nlu_for_conversion(source), Dropped()
    rows = []
    for example in loaded.examples:
        if example.intent is None:
            dropped.add("skipped: no intent", example.line)
            continue
        if example.slots:
            dropped.add("dropped slots (intent data has none)", example.line)
        rows.append([example.text, example.intent])
    if to == "csv":
        write_csv(target, ["text", "label"], rows)
    else:
        write_jsonl(target, [{"text": t, "label": label} for t, label in rows])
    return len(rows), dropped.notes()


def convert_file(source: str | Path, to: str, target: str | Path) -> tuple[int, list[str]]:
    """Convert ``source`` into ``target`` as ``to``; returns (records written, notes)."""
    refuse_same_file(source, target)
    if to in NLU_TARGETS:
        dropped = Dropped()
        written = convert_nlu(read_nlu_for_conversion(source), to, target, dropped)
        return written, dropped.notes()
    if to in INTENT_TARGETS and looks_like_nlu(source):
        return _nlu_to_intents(source, to, target)
    records, notes = convert_loaded(read_for_conversion(source), to)
    if to == "csv":
        write_csv(target, ["text", "label"], records)
    else:
        write_jsonl(target, records)
    return len(records), notes
