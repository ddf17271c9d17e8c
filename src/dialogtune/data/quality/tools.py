"""Tool-calling findings of ``data check``: calls, results and tool definitions, by line.

Read leniently, a dialogue keeps what training would refuse later or silently learn
wrong, so each problem gets a finding with its line and turn:

- ``undefined_tool``: a call naming a function the dialogue's ``tools`` do not define;
- ``bad_arguments``: arguments breaking the function's JSON schema (a required key
  missing, a value outside its ``enum``, a wrong type), via ``tool_calls.call_problems``;
- ``result_without_call``: a ``tool`` message answering no call before it (training
  refuses the file on it);
- ``unanswered_call``: a call no ``tool`` message answers (a warning: a dialogue may end
  on a call, but a reply after an unanswered call learns to answer without the result);
- ``bad_definition``: a malformed function definition (``formats.tools_file``), listed
  once per distinct definition with every line that holds it.

Arguments that are not JSON, or not an object, cannot be read at all: they are
``malformed`` rows (field ``messages[i].tool_calls[k].function.arguments``), as a broken
``tools`` list is. ``summary`` counts dialogues with tools, calls, results and calls per tool.
"""

from __future__ import annotations

import json
from collections import Counter

from ...errors import DataError
from ..formats.tools_file import definition_problems
from ..records import Dialogue
from ..tool_calls import ToolCall, call_problems, calls_from_openai, function_specs

KINDS = ("undefined_tool", "bad_arguments", "result_without_call", "unanswered_call",
         "bad_definition")


def uses_tools(dialogue: Dialogue) -> bool:
    """Whether a dialogue has tools, a call or a result."""
    return bool(dialogue.extra.get("tools")) or any(
        m.role == "tool" or m.extra.get("tool_calls") for m in dialogue.messages)


def tool_findings(dialogues: list[Dialogue], tools_file: str | None = None) -> dict | None:
    """Every finding above and the ``summary``; None when no dialogue involves tools."""
    if not any(uses_tools(d) for d in dialogues):
        return None
    found: dict = {kind: [] for kind in KINDS}
    per_tool: Counter = Counter()
    summary = {"dialogues_with_tools": 0, "dialogues_with_calls": 0, "calls": 0,
               "results": 0, "tools_file": tools_file}
    definitions: dict[str, dict] = {}
    for d in dialogues:
        tools = d.extra.get("tools") or []
        summary["dialogues_with_tools"] += bool(tools)
        bad = _definition_findings(d, tools, definitions)
        calls, results = _call_findings(d, function_specs(tools), bad, found, per_tool)
        summary["dialogues_with_calls"] += bool(calls)
        summary["calls"] += calls
        summary["results"] += results
    found["bad_definition"] = [f for f in definitions.values() if f["message"]]
    summary["per_tool"] = dict(per_tool.most_common())
    return {"summary": summary, **found}


def _definition_findings(d: Dialogue, tools: list, seen: dict[str, dict]) -> set[str]:
    """Check each distinct definition once (later dialogues holding it add their line);
    returns the names whose definitions are malformed here. (The reader has already
    given each definition a name and kept the last of two with one name.)"""
    bad = set()
    for item in tools:
        key = json.dumps(item, sort_keys=True, ensure_ascii=False)
        if key not in seen:
            name = item["function"]["name"]
            problems = definition_problems([item])
            seen[key] = {"lines": [], "tool": name,
                         "message": "; ".join(message for _, message in problems)}
        seen[key]["lines"].append(d.line)
        if seen[key]["message"]:
            bad.add(seen[key]["tool"])
    return bad


def _call_findings(d: Dialogue, specs: dict[str, dict], bad: set[str], found: dict,
                   per_tool: Counter) -> tuple[int, int]:
    """Calls against the tools, results against the calls; returns (calls, results).
    A result answers one of the calls of the latest calling turn (as the reader links)."""
    open_calls: dict[str, tuple[int, ToolCall]] = {}
    calls = results = 0
    for turn, message in enumerate(d.messages):
        if message.extra.get("tool_calls"):
            _warn_unanswered(d, open_calls, found)
            open_calls = {}
            for k, call in enumerate(calls_from_openai(message.extra["tool_calls"])):
                calls += 1
                per_tool[call.name] += 1
                open_calls[call.id or f"#{turn}.{k}"] = (turn, call)
                if call.name not in bad:  # a malformed schema cannot judge arguments
                    _check_call(d, turn, k, call, specs, found)
        elif message.role == "tool":
            results += 1
            if open_calls.pop(message.extra.get("tool_call_id"), None) is None:
                found["result_without_call"].append(_finding(
                    d, turn, "a tool result that answers no call before it",
                    message.extra.get("name")))
    _warn_unanswered(d, open_calls, found)
    return calls, results


def _check_call(d: Dialogue, turn: int, k: int, call: ToolCall, specs: dict[str, dict],
                found: dict) -> None:
    for problem in call_problems(call, specs):
        kind = "bad_arguments" if call.name in specs else "undefined_tool"
        found[kind].append(_finding(d, turn, problem, call.name, f"tool_calls[{k}]"))


def _warn_unanswered(d: Dialogue, open_calls: dict[str, tuple[int, ToolCall]],
                     found: dict) -> None:
    for call_id, (turn, call) in open_calls.items():
        found["unanswered_call"].append(_finding(
            d, turn, f"no tool message answers call {call_id} ({call.name})", call.name))


def _finding(d: Dialogue, turn: int | None, message: str, tool: str | None,
             part: str | None = None) -> dict:
    found = {"line": d.line, "turn": turn, "tool": tool, "message": message}
    if part:
        found["part"] = part
    return found


def refuse_unlinked_results(loaded) -> None:
    """Stop at the first tool result answering no call in a leniently read file, for verbs
    that rewrite a file whole (``convert``): its copy would be refused by training."""
    for d in loaded.dialogues:
        if any(m.role == "tool" for m in d.messages):
            found = tool_findings([d])["result_without_call"]
            if found:
                raise DataError(f"{found[0]['message']} (turn {found[0]['turn']}; "
                                "dialogtune data check lists them all)", loaded.path, d.line)
