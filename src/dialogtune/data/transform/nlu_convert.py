"""``data convert`` for joint intent + slot data: any of the four NLU formats to any other.

Targets (``--to``), the names of ``formats.nlu.NLU_FORMATS`` with the JSONL one told apart
from intent JSONL:

- ``nlu-jsonl``: ``{"text", "intent", "slots": [{"slot", "start", "end", "value"}]}``.
- ``rasa``: Rasa NLU YAML, ``[value](slot)`` annotations (``[value]{"entity": "slot"}``
  when the slot name holds characters the short form cannot carry).
- ``conll``: word-level BIO columns, ``# intent: X`` before each sentence. Words are the
  text's whitespace-separated tokens, also split where a span starts or ends inside one
  ("$20" with a span over "20" gives "$" and "20"); the text read back is the tokens
  joined by one space, so a text that had other spacing (or such a split) comes back
  re-spaced, with its spans moved along. Those records are named in a note.
- ``dialogue``: one chat dialogue per example, the user turn carrying ``intent`` and
  ``slots`` (the previous assistant turn, when the source kept one, before it).

Intent data (CSV, JSONL, Rasa without entities) converts to any of them with no slots.
A record a target cannot hold is skipped with a note naming its line: no intent (only
CoNLL may lack one), a text the Rasa markup would read differently (brackets that look
like an annotation, a line break), a CoNLL token starting with "#" (a comment line).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ...errors import DataError
from ..formats import Loaded, read
from ..formats.conll import INTENT_PREFIX
from ..formats.nlu import looks_like_nlu, read_nlu
from ..formats.rasa import parse_entities
from ..records import NluExample, Span
from .writers import write_atomic, write_jsonl

NLU_TARGETS = ("nlu-jsonl", "rasa", "conll", "dialogue")
_SIMPLE_SLOT = re.compile(r"^[\w.-]+$")


def read_nlu_for_conversion(path: str | Path) -> Loaded:
    """NLU data (slots kept, dialogue questions kept as context), or intent data as
    examples without slots; the first unreadable row stops it, as for other conversions."""
    if looks_like_nlu(path) or _is_dialogue(path):
        loaded = read_nlu(path, strict=False, context=True)
    else:
        loaded = read(path, "intent", strict=False)
        loaded.examples = [NluExample(u.text, u.label, (), None, u.line, u.source)
                           for u in loaded.utterances]
        loaded.kind = "nlu"
    loaded.refuse_unreadable(loaded.examples, "dialogtune data check lists every problem")
    return loaded


def _is_dialogue(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix.lower() not in (".json", ".jsonl"):
        return False
    from ..formats.nlu import detect_nlu

    try:
        return detect_nlu(path)[0] == "dialogue"
    except DataError:
        return False


def slot_dicts(example: NluExample) -> list[dict]:
    return [{"slot": s.slot, "start": s.start, "end": s.end, "value": example.value(s)}
            for s in example.slots]


def to_nlu_jsonl(example: NluExample, dropped) -> dict | None:
    if example.context is not None:
        dropped.add("dropped the previous assistant turn (context)", example.line)
    return {"text": example.text, "intent": example.intent, "slots": slot_dicts(example)}


def to_dialogue(example: NluExample, dropped) -> dict:
    turn = {"role": "user", "content": example.text, "intent": example.intent,
            "slots": slot_dicts(example)}
    before = [{"role": "assistant", "content": example.context}] \
        if example.context is not None else []
    return {"messages": before + [turn]}


def rasa_markup(example: NluExample) -> str:
    """The example as one Rasa line: "fly to [Paris](city)"."""
    parts, last = [], 0
    for span in example.slots:
        parts.append(example.text[last:span.start])
        name = span.slot if _SIMPLE_SLOT.match(span.slot) else None
        annotation = f"({name})" if name else json.dumps({"entity": span.slot},
                                                          ensure_ascii=False)
        parts.append(f"[{example.value(span)}]{annotation}")
        last = span.end
    parts.append(example.text[last:])
    return "".join(parts)


def to_rasa_line(example: NluExample, dropped) -> tuple[str, str] | None:
    """(intent, annotated line), or None (with a note) when Rasa would read it back
    differently."""
    if example.context is not None:
        dropped.add("dropped the previous assistant turn (context)", example.line)
    line = rasa_markup(example)
    try:
        same = "\n" not in line and "\r" not in line and \
            parse_entities(line) == (example.text, list(example.slots)) and \
            example.text == example.text.strip()
    except DataError:
        same = False
    if not same:
        dropped.add("skipped: the text cannot be written as a Rasa example unchanged "
                    "(brackets like an annotation, a line break or edge spaces)", example.line)
        return None
    return example.intent, line


def rasa_yaml(lines: list[tuple[str, str]]) -> str:
    """A Rasa 3 NLU file: one ``- intent:`` block per intent, in first-seen order."""
    blocks: dict[str, list[str]] = {}
    for intent, line in lines:
        blocks.setdefault(intent, []).append(line)
    out = ['version: "3.1"', "nlu:"]
    for intent, items in blocks.items():
        name = intent if _SIMPLE_SLOT.match(intent) else json.dumps(intent, ensure_ascii=False)
        out.append(f"- intent: {name}")
        out.append("  examples: |")
        out += [f"    - {item}" for item in items]
    return "\n".join(out) + "\n"


def conll_tokens(example: NluExample) -> tuple[list[tuple[str, str]], NluExample]:
    """(token, tag) rows and the example as CoNLL reads it back (text re-spaced)."""
    cuts = sorted({s.start for s in example.slots} | {s.end for s in example.slots})
    pieces = []  # (start, end) of each token in the original text
    for match in re.finditer(r"\S+", example.text):
        start = match.start()
        for cut in cuts:
            if match.start() < cut < match.end() and cut > start:
                pieces.append((start, cut))
                start = cut
        pieces.append((start, match.end()))
    rows, new_start, position = [], {}, 0
    for start, end in pieces:
        new_start[start] = position
        position += end - start + 1
    new_end = {end: new_start[start] + end - start for start, end in pieces}
    spans = tuple(Span(s.slot, new_start[s.start], new_end[s.end]) for s in example.slots)
    for start, end in pieces:
        span = next((s for s in example.slots if s.start <= start and end <= s.end), None)
        tag = "O" if span is None else ("B-" if span.start == start else "I-") + span.slot
        rows.append((example.text[start:end], tag))
    text = " ".join(token for token, _ in rows)
    return rows, NluExample(text, example.intent, spans, None, example.line, example.source)


def to_conll_block(example: NluExample, dropped) -> str | None:
    if example.context is not None:
        dropped.add("dropped the previous assistant turn (context)", example.line)
    rows, back = conll_tokens(example)
    if any(token.startswith("#") or token.startswith("-DOCSTART-") for token, _ in rows) or \
            any(not _SIMPLE_SLOT.match(s.slot) for s in example.slots):
        dropped.add("skipped: a token starts with '#' or a slot name has spaces "
                    "(CoNLL would read it differently)", example.line)
        return None
    if back.text != example.text:
        dropped.add("text re-spaced into word-level tokens (spans moved along)",
                    example.line)
    head = [f"{INTENT_PREFIX} {example.intent}"] if example.intent is not None else []
    return "\n".join(head + [f"{token}\t{tag}" for token, tag in rows]) + "\n"


def convert_nlu(loaded: Loaded, to: str, target: str | Path, dropped) -> int:
    """Write ``loaded.examples`` to ``target`` as ``to``; returns the records written."""
    examples = []
    for example in loaded.examples:
        if example.intent is None and to != "conll":
            dropped.add("skipped: no intent (only CoNLL sentences may lack one)",
                        example.line)
        else:
            examples.append(example)
    if to in ("nlu-jsonl", "dialogue"):
        writer = to_nlu_jsonl if to == "nlu-jsonl" else to_dialogue
        records = [writer(e, dropped) for e in examples]
        write_jsonl(target, records)
        return len(records)
    if to == "rasa":
        lines = [line for line in (to_rasa_line(e, dropped) for e in examples) if line]
        text = rasa_yaml(lines)
        write_atomic(target, lambda handle: handle.write(text))
        return len(lines)
    blocks = [b for b in (to_conll_block(e, dropped) for e in examples) if b]
    write_atomic(target, lambda handle: handle.write("\n".join(blocks)))
    return len(blocks)
