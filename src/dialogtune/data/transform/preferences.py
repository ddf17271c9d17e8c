"""``data make-preferences``: preference pairs from a dialogue set, for a team with no
logged feedback yet to train for grounding.

Every trained assistant turn that answers in words (no tool call) becomes one pair: the
dialogue before it is the context, the reference reply is ``chosen``, and ``rejected`` is

- the reply a run generated for the same context (``reply``, given by the caller: the
  command passes a ``ChatPredictor``'s), when it differs from the reference; or
- without a run, the reference with one stated fact corrupted: a number or amount, a
  name, a time, a date or a phone number (``data/values.py`` finds them) swapped for
  another value of the same kind that the dialogue or its tool results state — the
  hallucination a grounded bot must not make. The seed picks which value and which
  replacement, so a file is made again identically.

Turns where nothing can be corrupted (no value, or no other value of its kind to swap in)
or where the run said the same as the reference are skipped and counted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ..encode.chat import dialogue_tools, message_dicts
from ..formats import read_dialogues
from ..records import Dialogue
from ..values import Value, extract_values, result_texts
from .writers import refuse_same_file, write_jsonl

# (context messages, tools) → the assistant message a run writes for that context
Reply = Callable[[list[dict], list[dict] | None], dict]
CURRENCY = re.compile(r"^[$€£]\s?")


@dataclass
class MadePreferences:
    """What ``make_preferences`` wrote and skipped (the command prints it)."""

    rows: int = 0
    turns: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def known_texts(messages: list[dict]) -> list[str]:
    """What a dialogue states: every turn's words, each tool result's and call argument's
    leaf values (a JSON result is read value by value)."""
    texts = []
    for message in messages:
        if message["role"] == "tool":
            texts += result_texts(message["content"])
        else:
            texts.append(message["content"] or "")
        for call in message.get("tool_calls") or []:
            texts += result_texts(call.get("function", {}).get("arguments", ""))
    return texts


def _replacement(value: Value, other: Value) -> str:
    """``other`` written as ``value`` is: a number keeps the reply's currency sign and its
    thousands commas or their absence (a format cue must not give the rejected reply away)."""
    if value.kind != "number":
        return other.text
    sign = CURRENCY.match(value.text)
    digits = CURRENCY.sub("", other.text).replace(",", "")
    if "," in value.text:
        digits = format(Decimal(digits), ",f")
    return (sign[0] if sign else "") + digits


def corrupt_reply(reply: str, known: list[str], rng: random.Random) -> str | None:
    """``reply`` with one stated value swapped for a different value of the same kind from
    ``known``; None when there is nothing to swap."""
    pool: dict[str, dict[str, Value]] = {}
    for text in known:
        for value in extract_values(text):
            pool.setdefault(value.kind, {}).setdefault(value.text, value)
    choices = []
    for value in extract_values(reply):
        others = [o for text, o in sorted(pool.get(value.kind, {}).items())
                  if not (o.keys & value.keys) and text.strip()]
        if others and value.text in reply:
            choices.append((value, others))
    if not choices:
        return None
    value, others = rng.choice(choices)
    corrupted = reply.replace(value.text, _replacement(value, rng.choice(others)), 1)
    return corrupted if corrupted != reply else None


def _same(reference: dict, generated: dict) -> bool:
    words = lambda m: " ".join((m.get("content") or "").split())  # noqa: E731
    calls = lambda m: [(c["function"]["name"], c["function"]["arguments"])  # noqa: E731
                       for c in m.get("tool_calls") or []]
    return words(reference) == words(generated) and calls(reference) == calls(generated)


def dialogue_pairs(dialogue: Dialogue, number: int, rng: random.Random, reply: Reply | None,
                   made: MadePreferences) -> list[dict]:
    """The pairs of one dialogue (see the module docstring)."""
    messages, tools = message_dicts(dialogue), dialogue_tools(dialogue)
    rows = []
    for i, message in enumerate(dialogue.messages):
        if (i == 0 or message.role != "assistant" or message.weight == 0
                or messages[i].get("tool_calls") or not message.content.strip()):
            continue
        made.turns += 1
        chosen = {"role": "assistant", "content": message.content}
        if reply is not None:
            rejected = reply(messages[:i], tools)
            if _same(chosen, rejected):
                made.skip("same as the reference")
                continue
        else:
            others = known_texts(messages[:i] + messages[i + 1:])
            corrupted = corrupt_reply(message.content, others, rng)
            if corrupted is None:
                made.skip("nothing to corrupt")
                continue
            rejected = {"role": "assistant", "content": corrupted}
        ident = dialogue.extra.get("id", number)
        rows.append({"id": f"{ident}:{i}", **({"tools": tools} if tools else {}),
                     "messages": messages[:i], "chosen": chosen, "rejected": rejected})
    return rows


def make_preferences(data: str | Path, output: str | Path, reply: Reply | None = None,
                     seed: int = 0, tools: str | None = None) -> MadePreferences:
    """Write the pairs of the dialogues of ``data`` to ``output`` (JSONL, atomically)."""
    refuse_same_file(data, output)
    dialogues = read_dialogues(data, tools=tools)
    rng, made, rows = random.Random(seed), MadePreferences(), []
    for number, dialogue in enumerate(dialogues, 1):
        rows += dialogue_pairs(dialogue, number, rng, reply, made)
    write_jsonl(output, rows)
    made.rows = len(rows)
    return made


def predictor_reply(predictor, max_new_tokens: int = 128) -> Reply:
    """A ``ChatPredictor``'s greedy reply as an assistant message (its calls included)."""
    def reply(context: list[dict], tools: list[dict] | None) -> dict:
        parsed = predictor.respond(context, tools=tools, max_new_tokens=max_new_tokens)
        message = {"role": "assistant", "content": parsed.content}
        if parsed.calls:
            message["tool_calls"] = [c.to_openai(f"call_{n}")
                                     for n, c in enumerate(parsed.calls, 1)]
        return message
    return reply
