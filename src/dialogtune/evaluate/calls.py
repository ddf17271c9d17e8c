"""Tool-call metrics: did the model call where the reference calls, the right function,
with the right arguments? Pure functions over reference and generated ``ToolCall``s.

Each scored turn is one assistant turn generated from the reference dialogue before it
(teacher-forced context: earlier reference calls and results included). A turn *calls*
when the model wrote any call, even one whose body does not parse.

- ``call_precision``: of the turns where the model called, the share where the reference
  calls too; ``call_recall``: of the reference's call turns, the share where the model
  called.
- ``name_accuracy``, ``arguments_exact_match``: over every reference call (a call the
  model missed counts wrong — the stricter reading). Within a turn each reference call is
  paired with the first unpaired generated call of the same function; a reference call
  with no such partner has its name wrong. Exact match: paired and every argument equal,
  no key missing or extra.
- ``argument_f1``: micro F1 over ``key = value`` pairs at the reference's call turns: a
  paired call's shared pairs are true positives, the reference's other pairs (missed calls
  included) false negatives, the generated calls' other pairs there (wrong function, extra
  calls) false positives. Calls at turns where the reference answers in words count in
  ``call_precision`` only.
- ``argument_errors``: where the paired calls' arguments go wrong, per function and key
  (``missing``: the reference has the key and the call lacks it; ``wrong``: both have it
  with different values; ``extra``: only the call has it), with a few examples of wrong
  values: what to fix first (a date format, an optional key the model leaves out).
- ``json_valid_rate``: of all generated call attempts, the share whose body parses (JSON
  with a name and object arguments); ``schema_valid_rate``: the share that also passes the
  function's schema (known name, required keys, enums, types).

Argument values are compared normalised (:func:`normal_value`): strings stripped with
inner whitespace collapsed, case kept (an enum or a name is case-sensitive to a backend);
numbers and numeric strings as decimals ("1630" = 1630 = "1630.0"); booleans and
"true"/"false" strings alike; lists and objects as sorted JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..data.tool_calls import ToolCall


@dataclass
class CallTurn:
    """One scored turn: the reference's calls, the model's parsed calls, the model's call
    bodies that did not parse, and how many parsed calls broke their function's schema."""

    reference: list[ToolCall]
    generated: list[ToolCall] = field(default_factory=list)
    invalid: int = 0
    schema_errors: int = 0

    @property
    def called(self) -> bool:
        return bool(self.generated) or self.invalid > 0


def normal_value(value: Any) -> str:
    """An argument value as compared (see the module docstring)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = re.sub(r"\s+", " ", str(value)).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return format(number.normalize(), "f") if number.is_finite() else text


def argument_pairs(call: ToolCall) -> set[tuple[str, str]]:
    """The call's ``(key, normalised value)`` pairs."""
    return {(key, normal_value(value)) for key, value in call.arguments.items()}


def pair_calls(reference: list[ToolCall], generated: list[ToolCall]
               ) -> tuple[list[tuple[ToolCall, ToolCall]], list[ToolCall], list[ToolCall]]:
    """(paired, unpaired reference, unpaired generated): each reference call with the first
    unused generated call of the same name."""
    left, pairs, missed = list(generated), [], []
    for ref in reference:
        match = next((call for call in left if call.name == ref.name), None)
        if match is None:
            missed.append(ref)
        else:
            left.remove(match)
            pairs.append((ref, match))
    return pairs, missed, left


EXAMPLES_SHOWN = 8


def argument_errors(pairs: list[tuple[ToolCall, ToolCall]]) -> dict:
    """``{"by_key": {"Function.key": {"missing", "wrong", "extra"}}, "examples": [...]}``
    over paired (reference, generated) calls; keys sorted by their error count."""
    counts: dict[str, dict[str, int]] = {}
    examples: list[dict] = []
    for ref, gen in pairs:
        for key in sorted(set(ref.arguments) | set(gen.arguments)):
            kind = _argument_error(ref.arguments, gen.arguments, key)
            if kind is None:
                continue
            row = counts.setdefault(f"{ref.name}.{key}", dict.fromkeys(
                ("missing", "wrong", "extra"), 0))
            row[kind] += 1
            if kind == "wrong" and len(examples) < EXAMPLES_SHOWN:
                examples.append({"function": ref.name, "key": key,
                                 "reference": ref.arguments[key],
                                 "generated": gen.arguments[key]})
    ranked = sorted(counts.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return {"by_key": dict(ranked), "examples": examples}


def _argument_error(want: dict, got: dict, key: str) -> str | None:
    if key not in got:
        return "missing"
    if key not in want:
        return "extra"
    return None if normal_value(want[key]) == normal_value(got[key]) else "wrong"


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


def call_metrics(turns: list[CallTurn]) -> dict:
    """The ``tool_calls`` block (see the module docstring), with the counts behind it;
    a rate is None when there is nothing to count."""
    c = dict.fromkeys(("called_turns", "called_at_reference", "reference_call_turns",
                       "reference_calls", "names_right", "arguments_exact", "pairs_tp",
                       "pairs_fp", "pairs_fn", "call_attempts", "calls_parsed",
                       "calls_schema_valid"), 0)
    all_pairs: list[tuple[ToolCall, ToolCall]] = []
    for turn in turns:
        c["called_turns"] += turn.called
        c["call_attempts"] += len(turn.generated) + turn.invalid
        c["calls_parsed"] += len(turn.generated)
        c["calls_schema_valid"] += len(turn.generated) - turn.schema_errors
        if not turn.reference:
            continue
        c["reference_call_turns"] += 1
        c["called_at_reference"] += turn.called
        c["reference_calls"] += len(turn.reference)
        pairs, missed, extra = pair_calls(turn.reference, turn.generated)
        c["names_right"] += len(pairs)
        all_pairs += pairs
        for ref, gen in pairs:
            want, got = argument_pairs(ref), argument_pairs(gen)
            c["arguments_exact"] += want == got
            c["pairs_tp"] += len(want & got)
            c["pairs_fn"] += len(want - got)
            c["pairs_fp"] += len(got - want)
        c["pairs_fn"] += sum(len(call.arguments) for call in missed)
        c["pairs_fp"] += sum(len(call.arguments) for call in extra)
    return {"call_precision": _ratio(c["called_at_reference"], c["called_turns"]),
            "call_recall": _ratio(c["called_at_reference"], c["reference_call_turns"]),
            "name_accuracy": _ratio(c["names_right"], c["reference_calls"]),
            "arguments_exact_match": _ratio(c["arguments_exact"], c["reference_calls"]),
            "argument_f1": _f1(c["pairs_tp"], c["pairs_fp"], c["pairs_fn"]),
            "json_valid_rate": _ratio(c["calls_parsed"], c["call_attempts"]),
            "schema_valid_rate": _ratio(c["calls_schema_valid"], c["call_attempts"]),
            "scored_turns": len(turns), **c, "argument_errors": argument_errors(all_pairs)}
