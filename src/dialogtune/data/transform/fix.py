"""``dialogtune data fix``: decide what to drop or redact (pure), then write a cleaned copy.

Always dropped, because training would stop on them: rows that cannot be read and empty
utterances. On request: exact duplicates (the first occurrence is kept), conflicting
texts (every copy: which label is right is a person's call), and personal data (replaced
by placeholders such as [EMAIL]). Slot spans (JSONL records with ``slots``, dialogue
turns with ``slots``) follow the redaction: spans after it shift by the length
difference, a span overlapping it covers the placeholder, and a ``value`` is rewritten to
the text it now points at (``quality.pii.redact_with_spans``).
Near duplicates are reported by ``check`` but never dropped: they are often legitimate
paraphrases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..formats import Loaded, read
from ..formats.nlu import CONLL_SUFFIXES
from ..quality import checks as q
from ..quality import dialogues as dq
from ..quality.pii import redact, redact_with_spans
from .writers import (ensure_writable, map_dialogue_texts, refuse_same_file, with_text,
                      write_like)


@dataclass
class FixOptions:
    dedupe: bool = False
    drop_conflicts: bool = False
    redact_pii: bool = False


def plan_fix(loaded: Loaded, options: FixOptions) -> tuple[list, dict]:
    """(raw records to write, changes) where changes maps each action to its lines."""
    intent = loaded.kind == "intent"
    entries = q.utterance_entries(loaded.utterances) if intent else \
        dq.dialogue_entries(loaded.dialogues)
    changes: dict = {"unreadable": [m["line"] for m in loaded.malformed],
                     "empty": [r.line for r in loaded.utterances if not r.text.strip()]}
    if options.dedupe:
        changes["duplicates"] = sorted(line for group in q.exact_duplicates(entries)
                                       for line in group["lines"][1:])
    if options.drop_conflicts:
        clashes = q.conflicts(entries if intent else dq.reply_entries(loaded.dialogues))
        changes["conflicts"] = sorted(line for c in clashes for line in c["lines"])
    dropped = {line for key in ("empty", "duplicates", "conflicts")
               for line in changes.get(key, [])}
    raws, redacted = [], {}
    for record, raw in zip(loaded.records, loaded.raws):
        if record.line in dropped:
            continue
        if options.redact_pii:
            raw = _redact_record(loaded, record, raw, redacted)
        raws.append(raw)
    if options.redact_pii:
        changes["redacted"] = {kind: sorted(set(lines)) for kind, lines in redacted.items()}
    changes["kept"] = len(raws)
    return raws, changes


def _redact_record(loaded: Loaded, record, raw, redacted: dict):
    """The raw record with personal data replaced; ``redacted`` collects kind → lines."""
    def change(text: str) -> str:
        clean, matches = redact(text)
        for match in matches:
            redacted.setdefault(match.kind, []).append(record.line)
        return clean

    if loaded.kind == "intent":
        if isinstance(raw, dict) and _has_spans(raw.get("slots")):
            key = loaded.text_key if loaded.text_key in raw else "text"
            return _redact_slotted(raw, key, change)
        clean = change(record.text)
        return with_text(loaded, raw, clean) if clean != record.text else raw
    if loaded.format == "chat" and isinstance(raw.get("messages"), list):
        raw = dict(raw)
        raw["messages"] = [_redact_slotted(turn, "content", change)
                           if isinstance(turn, dict) and _has_spans(turn.get("slots")) else
                           turn for turn in raw["messages"]]
        # then the other turns and the system field (redacted turns have nothing left)
    return map_dialogue_texts(raw, loaded.format, change)


def _has_spans(slots) -> bool:
    """A ``slots`` list whose entries all have whole-number offsets (others stay as read)."""
    return isinstance(slots, list) and bool(slots) and all(
        isinstance(s, dict) and all(isinstance(s.get(k), int) and not isinstance(s.get(k), bool)
                                    for k in ("start", "end")) for s in slots)


def _redact_slotted(raw: dict, key: str, change) -> dict:
    """A record or turn with its text at ``key`` redacted and its ``slots`` moved along."""
    text = raw.get(key)
    if not isinstance(text, str):
        return raw
    change(text)  # counts what is redacted, by kind
    clean, spans, _ = redact_with_spans(text, [(s["start"], s["end"]) for s in raw["slots"]])
    if clean == text:
        return raw
    slots = []
    for slot, (start, end) in zip(raw["slots"], spans):
        moved = {**slot, "start": start, "end": end}
        if "value" in slot:
            moved["value"] = clean[start:end]
        slots.append(moved)
    return {**raw, key: clean, "slots": slots}


def fix_file(source: str | Path, target: str | Path, options: FixOptions,
             text_column: str | None = None, label_column: str | None = None) -> dict:
    """Write the cleaned copy of ``source`` to ``target`` (never in place); returns changes."""
    refuse_same_file(source, target)
    if Path(source).suffix.lower() in CONLL_SUFFIXES:
        raise DataError("CoNLL columns are cleaned through NLU JSONL: dialogtune data convert "
                        f"{source} --to nlu-jsonl --output FILE, fix FILE, then convert it "
                        "back with --to conll", str(source))
    loaded = read(source, strict=False, text_column=text_column, label_column=label_column)
    ensure_writable(loaded)
    raws, changes = plan_fix(loaded, options)
    write_like(loaded, raws, target)
    return changes
