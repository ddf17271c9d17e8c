"""Dialogue findings: structure (role order, empty turns, missing or last replies) and the
entries that let the shared duplicate / conflict / leakage functions compare dialogues.

A dialogue is compared as a whole (every turn's role and normalised text, a turn's tool
calls included); a *conflict* is the same context (every turn before the last assistant
turn) answered by different last replies, the dialogue analogue of one text under two
labels. Tool calls and results have their own findings (``tools``); here an assistant turn
that only calls is not empty, and several results in a row are not a role-order problem.
"""

from __future__ import annotations

from ..encode.chat import dialogue_tools, message_dicts, render
from ..encode.tools import call_text
from ..records import Dialogue
from ..tool_calls import calls_from_openai
from .checks import Entry, normalize

PREVIEW = 120


def preview(dialogue: Dialogue) -> str:
    """The first user turn (or first turn), shortened: what a person recognises it by."""
    first = next((m for m in dialogue.messages if m.role == "user"), None)
    text = (first or dialogue.messages[0]).content if dialogue.messages else ""
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[:PREVIEW - 1] + "…"


def turn_text(message) -> str:
    """What a turn says: its content, then its tool calls in the built-in text form."""
    calls = message.extra.get("tool_calls")
    return "\n".join(filter(None, [message.content, call_text(calls_from_openai(calls))
                                    if calls else ""]))


def _turns_key(messages) -> str:
    return "\n".join(f"{m.role}: {normalize(turn_text(m))}" for m in messages)


def dialogue_entries(dialogues: list[Dialogue]) -> list[Entry]:
    """Whole-dialogue entries for exact/near duplicates and leakage."""
    return [Entry(d.line, _turns_key(d.messages), preview(d), "") for d in dialogues
            if any(m.content.strip() for m in d.messages)]


def reply_entries(dialogues: list[Dialogue]) -> list[Entry]:
    """(context → last assistant reply) entries: the conflict check's text and label."""
    entries = []
    for d in dialogues:
        last = max((i for i, m in enumerate(d.messages) if m.role == "assistant"), default=None)
        if last is None:
            continue
        context = _turns_key(d.messages[:last])
        reply = normalize(turn_text(d.messages[last]))
        if context and reply:
            entries.append(Entry(d.line, context, preview(d), reply))
    return entries


def role_order(dialogue: Dialogue) -> list[dict]:
    """System only first; the conversation opens with the user; user and assistant alternate."""
    found = []
    roles = [m.role for m in dialogue.messages]
    for i, role in enumerate(roles):
        if role == "system" and i > 0:
            found.append((i, "system turn after the start"))
    talk = [(i, r) for i, r in enumerate(roles) if r != "system"]
    if talk and talk[0][1] != "user":
        found.append((talk[0][0], "the conversation starts with an assistant turn"))
    for (_, prev), (i, role) in zip(talk, talk[1:]):
        if role == prev and role != "tool":  # several results answer one turn's calls
            found.append((i, f"two {role} turns in a row"))
    return [{"line": dialogue.line, "turn": i, "message": message, "roles": roles}
            for i, message in found]


def structure_findings(dialogues: list[Dialogue]) -> dict[str, list[dict]]:
    """role_order, empty_turns, no_assistant and ends_on_user findings for every dialogue.

    ``ends_on_user`` lists dialogues that have an assistant turn but a user turn last (the
    final user turn gets no reply to learn from); dialogues with no assistant turn at all
    are ``no_assistant`` only.
    """
    found: dict[str, list[dict]] = {"role_order": [], "empty_turns": [], "no_assistant": [],
                                    "ends_on_user": []}
    for d in dialogues:
        found["role_order"] += role_order(d)
        for i, m in enumerate(d.messages):
            if not m.content.strip() and not m.extra.get("tool_calls"):
                found["empty_turns"].append({"line": d.line, "turn": i, "role": m.role,
                                             "text": preview(d)})
        roles = [m.role for m in d.messages]
        if "assistant" not in roles:
            found["no_assistant"].append({"line": d.line, "text": preview(d)})
        elif roles[-1] == "user":
            found["ends_on_user"].append({"line": d.line, "turn": len(roles) - 1,
                                          "text": d.messages[-1].content})
    return found


def pii_items(dialogues: list[Dialogue]) -> list[tuple[int | None, str, dict]]:
    """(line, text, {turn, role}) for every turn, the input of ``quality.pii_findings``."""
    return [(d.line, m.content, {"turn": i, "role": m.role})
            for d in dialogues for i, m in enumerate(d.messages)]


def template_texts(tokenizer, dialogues: list[Dialogue]) -> list[str]:
    """Each dialogue as the model sees it: through the chat template when there is one,
    with its tools, calls and results rendered as training renders them."""
    texts = []
    for d in dialogues:
        try:
            texts.append(render(tokenizer, message_dicts(d), tools=dialogue_tools(d)))
        except Exception:  # no template, or one that rejects this role order
            texts.append("\n".join(turn_text(m) for m in d.messages))
    return texts
