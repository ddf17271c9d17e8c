"""Tool definitions: what makes one malformed, and a whole file of them for ``--tools``.

A data set whose dialogues all call the same backend rarely repeats the function list on
every line: ``--tools FILE`` (config ``data.tools``) gives it once, as a JSON file holding
an OpenAI ``tools`` list (``[{"type": "function", "function": {...}}]``), bare function
objects (``[{"name", "description", "parameters"}]``) or an object with either under
``"tools"``. Every dialogue that has no ``tools`` of its own gets the file's; a dialogue's
own list always wins (it may describe a different service).

``definition_problems`` is the check both paths share: the file is refused on its first
problem (one line naming the file and field), ``data check`` lists every problem of the
lists inside the data.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..files import read_text
from ..records import Dialogue
from ..tool_calls import openai_tools

TOOLS_FILE_BYTES = 16 << 20  # a tool list is small; a larger file is the wrong file


def definition_problems(tools: Any) -> list[tuple[str, str]]:
    """(field, message) for each way a ``tools`` list is malformed: an item without a
    function name, ``parameters`` that are not a JSON-schema object (checked against the
    JSON Schema meta-schema: misspelt types, ``required`` not a list…), a required key
    with no property, a name defined twice. Empty when every definition is usable."""
    if not isinstance(tools, list):
        return [("tools", "'tools' must be a list of function definitions")]
    problems, names = [], Counter()
    for i, item in enumerate(tools):
        function = item.get("function", item) if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            problems.append((f"tools[{i}]", "a tool needs a 'function' with a 'name'"))
            continue
        names[name] += 1
        field = f"tools[{i}].function.parameters" if "function" in item else \
            f"tools[{i}].parameters"
        problems += [(field, f"{name}: {message}")
                     for message in _schema_problems(function.get("parameters"))]
    problems += [("tools", f"{name}: defined {n} times") for name, n in names.items() if n > 1]
    return problems


def _schema_problems(parameters: Any) -> list[str]:
    """What is wrong with one function's ``parameters`` (None: no parameters, fine)."""
    from jsonschema import Draft202012Validator

    if parameters is None:
        return []
    if not isinstance(parameters, dict):
        return ["'parameters' must be a JSON schema object"]
    found = [f"{'.'.join(map(str, e.absolute_path)) or 'parameters'}: {e.message}"
             for e in Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(
                 parameters)]
    if parameters.get("type", "object") != "object":
        found.append("parameters must have type 'object' (a call's arguments are an object)")
    properties = parameters.get("properties")
    required = parameters.get("required")
    if isinstance(required, list) and isinstance(properties, dict):
        found += [f"required key '{key}' has no property" for key in required
                  if isinstance(key, str) and key not in properties]
    return found


def read_tools_file(path: str | Path) -> list[dict]:
    """The OpenAI ``tools`` list of a JSON file (see module doc); a DataError naming the
    file (and the field) when it is missing, not JSON, empty or a definition is malformed."""
    text = read_text(path, TOOLS_FILE_BYTES)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", str(path), exc.lineno) from None
    if isinstance(raw, dict) and "tools" in raw:
        raw = raw["tools"]
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of tools (OpenAI 'tools' or function objects)",
                        str(path))
    if not raw:
        raise DataError("the tools file lists no tools", str(path))
    problems = definition_problems(raw)
    if problems:
        field, message = problems[0]
        raise DataError(message, str(path), None, field)
    return openai_tools(raw)


def with_tools(dialogues: list[Dialogue], tools: list[dict] | None) -> list[Dialogue]:
    """``dialogues`` with ``tools`` given to every one that has none of its own (in place,
    returned for chaining); ``tools`` None leaves them as they are."""
    if tools:
        for dialogue in dialogues:
            if not dialogue.extra.get("tools"):
                dialogue.extra["tools"] = list(tools)
    return dialogues


def tools_from(path: str | Path | None) -> list[dict] | None:
    """``read_tools_file(path)``, or None when no file is given."""
    return read_tools_file(path) if path else None
