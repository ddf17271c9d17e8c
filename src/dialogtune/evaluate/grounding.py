"""Whether generated replies stay grounded in what the dialogue and its tools said.

Pure functions over text (values from ``values.py``):

- ``hallucinated_value_rate``: of the generated replies scored (assistant turns whose
  reference is words, not a call), the share stating at least one value (number, amount,
  time, date, phone number, name) found neither in the dialogue so far (every turn's words
  and earlier calls' arguments) nor in the tool results so far;
- ``result_value_recall``: of the values a reference reply states that come from the tool
  results, the share the generated reply states too (any spelling with the same key);
- ``reference_hallucinated_value_rate``: the same check on the reference replies, the floor
  the data and the extractor set (SGD replies sometimes state counts the stored results
  no longer hold, e.g. "I found 7 restaurants" over 3 kept rows);
- counts, so a reader can judge the rates, and a few flagged values as examples.

The same function judges a run trained with tools and one trained without them: the
texts it is given are always the original dialogue's and its tool results, whatever
context the model saw.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.values import Value, extract_values, is_stated, known_keys

EXAMPLES = 5  # flagged values listed in the metrics, for a reader to check the extractor


@dataclass
class GroundingTurn:
    """One scored reply: what the model said, the reference, and what was known before it
    (``said``: the dialogue's texts; ``results``: the tool results' texts)."""

    generated: str
    reference: str
    said: list[str]
    results: list[str]


def unsupported(reply: str, known: frozenset[str]) -> list[Value]:
    """The values ``reply`` states that ``known`` (keys of :func:`known_keys`) does not."""
    return [v for v in extract_values(reply) if not is_stated(v, known)]


def result_values(reference: str, results: frozenset[str]) -> list[Value]:
    """The values the reference reply states that the tool results hold."""
    return [v for v in extract_values(reference) if is_stated(v, results)]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def grounding_metrics(turns: list[GroundingTurn]) -> dict:
    """The ``grounding`` block (see the module docstring); rates are None with nothing to
    count (no replies, or no reference reply stating a tool result's value)."""
    counts = dict.fromkeys(("replies_with_values", "values_stated", "hallucinated_replies",
                            "values_hallucinated", "reference_hallucinated_replies",
                            "result_values_in_references", "result_values_recalled"), 0)
    examples: list[dict] = []
    for turn in turns:
        results = known_keys(turn.results)
        known = results | known_keys(turn.said)
        stated, flagged = extract_values(turn.generated), unsupported(turn.generated, known)
        counts["replies_with_values"] += bool(stated)
        counts["values_stated"] += len(stated)
        counts["hallucinated_replies"] += bool(flagged)
        counts["values_hallucinated"] += len(flagged)
        counts["reference_hallucinated_replies"] += bool(unsupported(turn.reference, known))
        expected = result_values(turn.reference, results)
        generated_keys = known_keys([turn.generated])
        counts["result_values_in_references"] += len(expected)
        counts["result_values_recalled"] += sum(is_stated(v, generated_keys) for v in expected)
        examples += [{"value": v.text, "kind": v.kind, "reply": turn.generated}
                     for v in flagged][:EXAMPLES - len(examples)]
    replies = len(turns)
    return {"hallucinated_value_rate": _rate(counts["hallucinated_replies"], replies),
            "result_value_recall": _rate(counts["result_values_recalled"],
                                         counts["result_values_in_references"]),
            "reference_hallucinated_value_rate": _rate(
                counts["reference_hallucinated_replies"], replies),
            "replies": replies, **counts, "hallucinated_examples": examples}
