"""``dialogtune data check`` as one API call: read leniently, pick a tokenizer, gather findings.

The report is a plain dict (the JSON report as written). Top-level finding keys, the same
for intent and dialogue data so tools can read either:

- ``malformed``: rows that could not be read (line, field, message), train and test file;
- ``empty``: empty or whitespace-only utterances (dialogues: empty turns);
- ``duplicates``: ``exact`` groups (``lines``) and ``near`` pairs (Jaccard of character
  3-grams, or word 3-grams for dialogues, at least ``near_threshold``);
- ``conflicts``: one normalised text under several labels (dialogues: one context with
  different last assistant replies);
- ``leakage``: ``exact`` and ``near`` training items also in the ``--test`` file;
- ``pii``: e-mail, phone, card (Luhn), IBAN (mod 97), with ``kind`` and ``match``;
- ``label_counts`` and ``imbalance`` (intent data; ``{}`` / null for dialogues);
- ``lengths``: character and token percentiles, ``over_max`` items over the model limit;
- ``dialogues`` (dialogue data only): ``role_order``, ``empty_turns``, ``no_assistant``,
  ``ends_on_user``, ``too_long``;
- ``tools`` (dialogue data with tools, calls or results; null otherwise): calls naming
  undefined tools, arguments breaking the schema, results answering no call, unanswered
  calls, malformed definitions, and a ``summary`` (``quality.tools``). ``CheckOptions.tools``
  (``--tools FILE``) gives dialogues without tools of their own the file's;
- ``slots`` (NLU data only, ``kind`` "nlu"): span problems, spans per slot type, slot
  types seen once, test-only slot types and unseen test values per slot (``slots``);
- ``counts``: the number of findings of each kind, for a quick look or a CI gate.

NLU data (``kind`` "nlu": JSONL records with ``slots``, Rasa YAML with entity annotations,
CoNLL ``.conll``/``.bio``/``.iob`` files, and dialogue turns with ``kind="nlu"``) gets every
intent finding, computed on its utterances and intents, plus the ``slots`` section. Its
span problems are listed there rather than under ``malformed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError, DialogtuneError
from ..formats import Loaded, read
from ..formats.nlu import looks_like_nlu, read_nlu
from ..records import NluExample, Utterance
from . import checks as q
from . import dialogues as dq
from ..formats.tools_file import tools_from, with_tools
from .slots import slot_findings, split_problems
from .tools import KINDS as TOOL_KINDS
from .tools import tool_findings
from .near_dup import similar_pairs, word_shingles
from .vocabulary import unknown_examples, unknown_token_report

DEFAULT_MODELS = {"intent": "minilm", "dialogue": "smollm2", "nlu": "minilm"}
KINDS = ("auto", "intent", "dialogue", "nlu")


@dataclass
class CheckOptions:
    """What ``data check`` can be told; the defaults suit most domain data."""

    model: str | None = None
    max_length: int | None = None
    near_threshold: float = 0.8
    min_count: int = 10
    text_column: str | None = None
    label_column: str | None = None
    kind: str = "auto"  # the data kind: auto, intent, dialogue or nlu (module doc)
    tools: str | None = None  # a tools file for dialogues without tools (``--tools``)


def read_checked(path: str | Path, options: CheckOptions) -> Loaded:
    """Read ``path`` leniently as the data kind says (``auto``: NLU when it looks like it)."""
    if options.kind not in KINDS:
        raise DialogtuneError(f"unknown data kind '{options.kind}'; choose one of "
                              f"{', '.join(KINDS)}")
    kind = None if options.kind == "auto" else options.kind
    if kind == "nlu" or kind is None and looks_like_nlu(path):
        return read_nlu(path, strict=False, text_column=options.text_column,
                        intent_column=options.label_column)
    return read(path, kind, strict=False, text_column=options.text_column,
                label_column=options.label_column)


def check_files(train: str | Path, test: str | Path | None = None,
                options: CheckOptions | None = None, tokenizer=None) -> dict:
    """Every finding for ``train`` (and leakage into ``test``) as the JSON report's dict.

    ``tokenizer`` skips loading one (tests pass a tiny one); otherwise ``options.model`` or
    the default for the data kind is loaded, and token statistics are skipped with a note
    if the default model is not installed.
    """
    options = options or CheckOptions()
    if not 0 < options.near_threshold <= 1:
        raise DialogtuneError(f"--near must be in (0, 1], got {options.near_threshold}")
    file_tools = tools_from(options.tools)
    loaded = read_checked(train, options)
    held = read_checked(test, options) if test else None
    if file_tools and loaded.kind != "dialogue":
        raise DataError(f"--tools applies to dialogue data; this is {loaded.kind} data",
                        str(train))
    for read_file in (loaded, held):
        if read_file is not None and read_file.kind == "dialogue":
            with_tools(read_file.dialogues, file_tools)
    if held is not None and {loaded.kind, held.kind} == {"intent", "nlu"}:
        loaded, held = as_nlu(loaded), as_nlu(held)  # intent data: examples without slots
    if held is not None and held.kind != loaded.kind:
        raise DataError(f"the test file holds {held.kind} data but the training file holds "
                        f"{loaded.kind} data", str(test))
    model = options.model or DEFAULT_MODELS[loaded.kind]
    note = None
    if tokenizer is None:
        tokenizer, max_length, note = load_length_tokenizer(model, options.model is not None)
    else:
        max_length = model_max_length(tokenizer, None)
    max_length = options.max_length or max_length
    finder = {"intent": intent_findings, "dialogue": dialogue_findings,
              "nlu": nlu_findings}[loaded.kind]
    findings = finder(loaded, held, tokenizer, max_length, options)
    if loaded.kind == "nlu":  # span problems are the slots section's
        findings["malformed"] = split_problems(loaded)[1] + split_problems(held)[1]
    else:
        findings["malformed"] = loaded.malformed + (held.malformed if held else [])
    report = {"file": str(train), "kind": loaded.kind, "format": loaded.format,
              "records": len(loaded.records), "test_file": str(test) if test else None,
              "test_records": len(held.records) if held else None, "model": model,
              "max_length": max_length, "note": note}
    report.update(findings)
    report["counts"] = count_findings(report)
    return report


def load_length_tokenizer(model: str, explicit: bool):
    """(tokenizer, max length, note); a missing default model only skips token counts."""
    try:
        from ...models.loading import load_tokenizer, resolve_source

        source = resolve_source(model)
        tokenizer = load_tokenizer(source)
    except DialogtuneError as exc:
        if explicit:
            raise
        return None, None, f"token lengths skipped: {exc}"
    return tokenizer, model_max_length(tokenizer, source), None


def model_max_length(tokenizer, source: str | None) -> int | None:
    """The model's context: its config's position limit and the tokenizer's, whichever is less."""
    limits = []
    config = Path(source) / "config.json" if source else None
    if config is not None and config.is_file():
        values = json.loads(config.read_text(encoding="utf-8"))
        limits += [values[k] for k in ("max_position_embeddings", "n_positions")
                   if isinstance(values.get(k), int)]
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and declared < 1_000_000:
        limits.append(declared)
    return min(limits) if limits else None


def length_findings(texts: list[str], lines: list, tokenizer, max_length: int | None,
                    token_texts: list[str] | None = None, special: bool = True) -> dict:
    """Character and token percentiles, the items over ``max_length`` tokens, and the share
    of characters the model cannot represent (``unknown``, see ``vocabulary``)."""
    out = {"chars": q.percentiles([len(t) for t in texts]), "tokens": None, "unknown": None,
           "max_length": max_length, "over_max": []}
    if tokenizer is not None:
        tokens = q.token_counts(tokenizer, token_texts or texts, special)
        out["tokens"] = q.percentiles(tokens)
        out["unknown"] = unknown_token_report(tokenizer, texts, lines)
        if max_length:
            out["over_max"] = [{"line": line, "tokens": n, "text": text}
                               for line, n, text in zip(lines, tokens, texts) if n > max_length]
    return out


def intent_findings(loaded: Loaded, held: Loaded | None, tokenizer, max_length: int | None,
                    options: CheckOptions) -> dict:
    records = loaded.utterances
    entries = q.utterance_entries(records)
    test_entries = q.utterance_entries(held.utterances) if held else []
    near_dups, near_leaks = q.near_findings(entries, test_entries, options.near_threshold)
    counts = q.label_counts(records)
    filled = [r for r in records if r.text.strip()]
    return {
        "empty": q.empty_utterances(records),
        "duplicates": {"exact": q.exact_duplicates(entries), "near": near_dups,
                       "near_threshold": options.near_threshold},
        "conflicts": q.conflicts(entries),
        "leakage": {"exact": q.exact_leakage(entries, test_entries), "near": near_leaks},
        "pii": q.pii_findings([(r.line, r.text, {}) for r in filled]),
        "label_counts": counts,
        "imbalance": q.imbalance(counts, options.min_count, records),
        "lengths": length_findings([r.text for r in filled], [r.line for r in filled],
                                   tokenizer, max_length),
    }


def as_nlu(loaded: Loaded) -> Loaded:
    """Intent data read as NLU examples without slots (NLU data unchanged)."""
    if loaded.kind == "nlu":
        return loaded
    copy = Loaded(loaded.path, "nlu", loaded.format, loaded.container, loaded.strict)
    copy.examples = [NluExample(u.text, u.label, (), None, u.line, u.source)
                     for u in loaded.utterances]
    copy.problems = loaded.problems
    return copy


def as_utterances(loaded: Loaded) -> Loaded:
    """A copy of an NLU read whose utterances are its examples (intent None → "(none)")."""
    copy = Loaded(loaded.path, "intent", loaded.format, loaded.container, loaded.strict)
    copy.utterances = [Utterance(e.text, e.intent if e.intent is not None else "(none)",
                                 e.line, e.source) for e in loaded.examples]
    return copy


def nlu_findings(loaded: Loaded, held: Loaded | None, tokenizer, max_length: int | None,
                 options: CheckOptions) -> dict:
    """Every intent finding on the examples' texts and intents, plus ``slots``."""
    findings = intent_findings(as_utterances(loaded), as_utterances(held) if held else None,
                               tokenizer, max_length, options)
    findings["slots"] = slot_findings(loaded, held)
    return findings


def dialogue_findings(loaded: Loaded, held: Loaded | None, tokenizer, max_length: int | None,
                      options: CheckOptions) -> dict:
    dialogues = loaded.dialogues
    entries = dq.dialogue_entries(dialogues)
    test_entries = dq.dialogue_entries(held.dialogues) if held else []
    near_dups, near_leaks = q.near_findings(entries, test_entries, options.near_threshold,
                                            _dialogue_pairs)
    structure = dq.structure_findings(dialogues)
    joined = ["\n".join(m.content for m in d.messages) for d in dialogues]
    rendered = dq.template_texts(tokenizer, dialogues) if tokenizer is not None else None
    lengths = length_findings(joined, [d.line for d in dialogues], tokenizer, max_length,
                              rendered, special=False)
    for item in lengths["over_max"]:
        item["text"] = " ".join(item["text"].split())[:dq.PREVIEW]
    structure["too_long"] = lengths["over_max"]
    return {
        "empty": structure["empty_turns"],
        "duplicates": {"exact": q.exact_duplicates(entries), "near": near_dups,
                       "near_threshold": options.near_threshold},
        "conflicts": q.conflicts(dq.reply_entries(dialogues)),
        "leakage": {"exact": q.exact_leakage(entries, test_entries), "near": near_leaks},
        "pii": q.pii_findings(dq.pii_items(dialogues)),
        "label_counts": {},
        "imbalance": None,
        "lengths": lengths,
        "dialogues": structure,
        "tools": tool_findings(dialogues, options.tools),
    }


def _dialogue_pairs(keys: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """Word 3-grams: whole dialogues are long, and words make far fewer shingles."""
    return similar_pairs([word_shingles(key, 3) for key in keys], threshold)


def count_findings(report: dict) -> dict[str, int]:
    """How many findings of each kind: the terminal summary's table and a CI gate."""
    counts = {
        "malformed": len(report["malformed"]), "empty": len(report["empty"]),
        "exact_duplicates": sum(len(g["lines"]) - 1 for g in report["duplicates"]["exact"]),
        "near_duplicates": len(report["duplicates"]["near"]),
        "conflicts": len(report["conflicts"]),
        "leakage_exact": len(report["leakage"]["exact"]),
        "leakage_near": len(report["leakage"]["near"]), "pii": len(report["pii"]),
        "over_max_length": len(report["lengths"]["over_max"]),
        "unknown_tokens": len(unknown_examples(report)),
        "labels_under_minimum": len((report["imbalance"] or {}).get("under_minimum", [])),
    }
    for kind, found in (report.get("dialogues") or {}).items():
        counts[f"dialogues_{kind}"] = len(found)
    for kind in TOOL_KINDS if report.get("tools") else ():
        counts[f"tools_{kind}"] = len(report["tools"][kind])
    slots = report.get("slots")
    if slots is not None:  # unseen values are informative, not counted as findings
        counts["slot_span_problems"] = len(slots["span_problems"])
        counts["slots_seen_once"] = len(slots["seen_once"])
        counts["slots_test_only"] = len(slots["test_only"])
    return counts
