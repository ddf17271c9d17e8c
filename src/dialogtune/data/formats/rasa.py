"""Import of Rasa NLU training data (YAML) as intent utterances, with file line numbers.

Rasa writes examples as a literal block of "- " items under each intent::

    nlu:
    - intent: greet
      examples: |
        - hi
        - fly to [Paris](city)

Entity annotations are stripped to their surface text ("fly to Paris"), because intent
classification only needs the words. Other Rasa sections (synonym, regex, lookup) carry
no labelled utterances and are skipped. The YAML is composed (not just loaded) so every
example keeps the line it sits on.
"""

from __future__ import annotations

import re

import yaml

from ...errors import DataError
from ..files import read_text
from ..records import Utterance
from .base import Items, Loaded, ReadOptions

# [surface](entity), [surface](entity:value), [surface]{"entity": ...}, [surface]{...}[...]
ENTITY = re.compile(r"\[([^\]\n]*)\](?:\([^)\n]*\)|\{[^}\n]*\})+")


def strip_entities(text: str) -> str:
    """"book [Paris](city) for [two]{"entity": "n"}" → "book Paris for two"."""
    return ENTITY.sub(lambda m: m.group(1), text)


def read_rasa(out: Loaded, options: ReadOptions, items: Items | None = None) -> None:
    """Every example of every ``- intent:`` block, labelled with the intent's name."""
    try:
        root = yaml.compose(read_text(out.path), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}", out.path,
                        mark.line + 1 if mark else None) from None
    nlu = _mapping_get(root, "nlu")
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError("not Rasa NLU data: expected a top-level 'nlu:' list", out.path)
    for block in nlu.value:
        intent = _mapping_get(block, "intent")
        if not isinstance(intent, yaml.ScalarNode):
            continue  # synonym / regex / lookup blocks
        examples = _mapping_get(block, "examples")
        if examples is None:
            out.problem(intent.start_mark.line + 1, f"intent '{intent.value}' has no examples")
            continue
        label = str(intent.value).strip()
        for line, text in _examples(examples):
            out.keep(Utterance(text, label, line, out.path))
    if not out.utterances and not out.problems:
        raise DataError("no intent examples found", out.path)


def _mapping_get(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _examples(node) -> list[tuple[int, str]]:
    """(line, text) of each "- " item: a literal block (Rasa 2/3) or a YAML list."""
    if isinstance(node, yaml.SequenceNode):
        return [(item.start_mark.line + 1, strip_entities(str(item.value)).strip())
                for item in node.value if isinstance(item, yaml.ScalarNode)]
    if not isinstance(node, yaml.ScalarNode):
        return []
    # a block scalar starts on the line after its "|" indicator
    first = node.start_mark.line + 2 if node.style in ("|", ">") else node.start_mark.line + 1
    found = []
    for offset, raw in enumerate(str(node.value).split("\n")):
        item = raw.strip()
        if item.startswith("- ") or item == "-":
            text = strip_entities(item[1:]).strip()
            if text:
                found.append((first + offset, text))
    return found
