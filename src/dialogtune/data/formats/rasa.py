"""Import of Rasa NLU training data (YAML): intent utterances or NLU examples with slots.

Rasa writes examples as a literal block of "- " items under each intent::

    nlu:
    - intent: greet
      examples: |
        - hi
        - fly to [Paris](city)

For intent classification (``read_rasa``) entity annotations are stripped to their
surface text ("fly to Paris"). ``read_rasa_nlu`` keeps them as slot spans whose offsets
point into that stripped text: ``[Paris](city)``, ``[Paris](city:PAR)`` (the ``:value``
is a Rasa synonym, not part of the span) and ``[Paris]{"entity": "city", ...}`` all give
the span 'city' over "Paris". Other Rasa sections (synonym, regex, lookup) carry
no labelled utterances and are skipped. The YAML is composed (not just loaded) so every
example keeps the line it sits on.
"""

from __future__ import annotations

import json
import re

import yaml

from ...errors import DataError
from ..files import read_text
from ..records import Span, Utterance
from .base import Items, Loaded, ReadOptions
from .nlu_spans import add_example

# [surface](entity), [surface](entity:value), [surface]{"entity": ...}, [surface]{...}[...]
ENTITY = re.compile(r"\[([^\]\n]*)\](?:\([^)\n]*\)|\{[^}\n]*\})+")


def strip_entities(text: str) -> str:
    """"book [Paris](city) for [two]{"entity": "n"}" → "book Paris for two"."""
    return ENTITY.sub(lambda m: m.group(1), text)


def parse_entities(text: str) -> tuple[str, list[Span]]:
    """"fly to [Paris](city)" → ("fly to Paris", [Span("city", 7, 12)]); offsets in the
    stripped text. A DataError (no file yet) for an annotation naming no entity."""
    parts, spans, last, length = [], [], 0, 0
    for match in ENTITY.finditer(text):
        before = text[last:match.start()]
        parts.append(before)
        length += len(before)
        surface = match.group(1)
        entity = _entity_name(match.group(0)[len(surface) + 2:])
        spans.append(Span(entity, length, length + len(surface)))
        parts.append(surface)
        length += len(surface)
        last = match.end()
    parts.append(text[last:])
    return "".join(parts), spans


def _entity_name(annotation: str) -> str:
    """The entity of "(city)", "(city:PAR)" or '{"entity": "city", ...}' (first group)."""
    if annotation.startswith("("):
        name = annotation[1:annotation.index(")")].split(":", 1)[0].strip()
    else:
        try:
            obj = json.loads(annotation[:annotation.index("}") + 1])
        except ValueError:
            obj = None
        name = obj.get("entity") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"entity annotation {annotation!r} names no entity")
    return name.strip()


def read_rasa(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every example of every ``- intent:`` block, labelled with the intent's name."""
    for label, line, raw in _intent_examples(out):
        out.keep(Utterance(strip_entities(raw).strip(), label, line, out.path))
    if not out.utterances and not out.problems:
        raise DataError("no intent examples found", out.path)


def read_rasa_nlu(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every example as an NluExample whose entity annotations became slot spans."""
    for label, line, raw in _intent_examples(out):
        try:
            text, spans = parse_entities(raw)
        except DataError as exc:
            out.problem(line, exc.reason, "examples")
            continue
        lead = len(text) - len(text.lstrip())  # offsets follow the stripped text
        spans = [Span(s.slot, s.start - lead, s.end - lead) for s in spans]
        add_example(out, text.strip(), label, spans, line, raw,
                    fields=("examples", "intent", "entities"))
    if not out.examples and not out.problems:
        raise DataError("no intent examples found", out.path)


def _intent_examples(out: Loaded) -> list[tuple[str, int, str]]:
    """(intent, line, raw example with its annotations) of every ``- intent:`` block."""
    try:
        root = yaml.compose(read_text(out.path), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", out.path,
                        mark.line + 1 if mark else None) from None
    nlu = _mapping_get(root, "nlu")
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError("not Rasa NLU data: expected a top-level 'nlu:' list", out.path)
    found = []
    for block in nlu.value:
        intent = _mapping_get(block, "intent")
        if not isinstance(intent, yaml.ScalarNode):
            continue  # synonym / regex / lookup blocks
        examples = _mapping_get(block, "examples")
        if examples is None:
            out.problem(intent.start_mark.line + 1, f"intent '{intent.value}' has no examples")
            continue
        label = str(intent.value).strip()
        found += [(label, line, raw) for line, raw in _examples(examples)]
    return found


def _mapping_get(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _examples(node) -> list[tuple[int, str]]:
    """(line, raw text) of each "- " item: a literal block (Rasa 2/3) or a YAML list."""
    if isinstance(node, yaml.SequenceNode):
        return [(item.start_mark.line + 1, str(item.value))
                for item in node.value if isinstance(item, yaml.ScalarNode)]
    if not isinstance(node, yaml.ScalarNode):
        return []
    # a block scalar starts on the line after its "|" indicator
    first = node.start_mark.line + 2 if node.style in ("|", ">") else node.start_mark.line + 1
    found = []
    for offset, raw in enumerate(str(node.value).split("\n")):
        item = raw.strip()
        if (item.startswith("- ") or item == "-") and strip_entities(item[1:]).strip():
            found.append((first + offset, item[1:]))
    return found
