"""Dialogues → chat-template token ids with loss labels on assistant turns only.

The mask is found in text, not guessed from token patterns, so it holds for any template:
for assistant turn ``i`` the template renders ``messages[:i]`` plus its generation marker
(prompt) and ``messages[:i+1]`` (prompt + reply); the characters between the two, up to
the reply's end-of-turn marker (trailing whitespace dropped), are the trained span. The
whole dialogue is tokenized once with an offsets mapping and every token overlapping a
trained span gets its id as label; everything else (system, user, the marker
"<|im_start|>assistant\\n" itself, weight-0 replies) gets -100. The end-of-turn token
(``<|im_end|>``, ``</s>``) lies inside the span, so the model learns to stop.

Message contents never become control tokens: a user writing ``<|im_start|>system`` must
not forge a turn. Before rendering, every special-token string inside a content gets a
zero-width space after its first character (``<\u200b|im_start|>``), so the tokenizer reads
it as plain text while the template's own markers stay special. Training and inference
both render through :func:`render`, so they see the same escaped text.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field

from ...errors import ConfigError, DataError
from ..records import Dialogue
from .tools import template_messages

log = logging.getLogger("dialogtune")
IGNORE = -100
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def ensure_chat_template(tokenizer) -> None:
    """Use the model's own template; fall back to ChatML when it has none."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE


ZERO_WIDTH_SPACE = "\u200b"


def special_strings(tokenizer) -> tuple[str, ...]:
    """The text of every special token of ``tokenizer`` (``<|im_start|>``, ``</s>``...)."""
    tokens = set(getattr(tokenizer, "all_special_tokens", None) or [])
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            tokens.add(getattr(token, "content", str(token)))
    return tuple(sorted((t for t in tokens if len(t) > 1), key=lambda t: (-len(t), t)))


@functools.lru_cache(maxsize=32)
def _special_pattern(strings: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(map(re.escape, strings))) if strings else None


def neutralize(tokenizer, messages: list[dict]) -> list[dict]:
    """``messages`` with special-token strings in their contents made plain text.

    A zero-width space goes after the first character of each occurrence, so the text
    reads the same to a person but no longer matches the special token. Idempotent.
    """
    pattern = _special_pattern(special_strings(tokenizer))
    if pattern is None:
        return messages
    escape = lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:]  # noqa: E731
    return [_neutralize_message(m, lambda text: pattern.sub(escape, text)) for m in messages]


def neutralize_value(tokenizer, value):
    """``value`` (JSON: a tool list, arguments) with special-token strings in every string
    and key made plain, as :func:`neutralize` does for contents."""
    if isinstance(value, str):
        return neutralize(tokenizer, [{"content": value}])[0]["content"]
    if isinstance(value, list):
        return [neutralize_value(tokenizer, item) for item in value]
    if isinstance(value, dict):
        return {neutralize_value(tokenizer, k): neutralize_value(tokenizer, v)
                for k, v in value.items()}
    return value


def _neutralize_message(message: dict, plain) -> dict:
    """One message with ``plain`` applied to its content and its calls' arguments (user
    text copied into an argument must not become a control token either)."""
    out = dict(message)
    if isinstance(out.get("content"), str):
        out["content"] = plain(out["content"])
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [_neutralize_call(call, plain) for call in out["tool_calls"]]
    return out


def _neutralize_call(call, plain):
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": plain(function["arguments"])}}


def render(tokenizer, messages: list[dict], generation_prompt: bool = False,
           tools: list[dict] | None = None) -> str:
    """The template's text for ``messages`` (no tokenization), contents neutralized; tools,
    calls and results as ``encode.tools`` writes them for this template."""
    ensure_chat_template(tokenizer)
    tools = neutralize_value(tokenizer, tools) if tools else tools  # descriptions are text
    messages, keywords = template_messages(tokenizer, neutralize(tokenizer, messages), tools)
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=generation_prompt, **keywords)


def render_prompt_ids(tokenizer, messages: list[dict], tools: list[dict] | None = None
                      ) -> list[int]:
    """Token ids of ``messages`` followed by the assistant generation marker."""
    text = render(tokenizer, messages, generation_prompt=True, tools=tools)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


TOOL_FIELDS = ("tool_calls", "tool_call_id", "name")


def message_dicts(dialogue: Dialogue) -> list[dict]:
    """The ``{"role", "content"}`` list a chat template expects, with the OpenAI tool
    fields (``tool_calls``, ``tool_call_id``, ``name``) of messages that have them."""
    return [{"role": m.role, "content": m.content,
             **{k: m.extra[k] for k in TOOL_FIELDS if m.extra.get(k) is not None}}
            for m in dialogue.messages]


def dialogue_tools(dialogue: Dialogue) -> list[dict] | None:
    """The functions a dialogue may call (its ``tools``), None when it has none."""
    return dialogue.extra.get("tools") or None


@dataclass
class EncodedDialogue:
    """Token ids and aligned labels (-100 = not trained); ``turns`` = trained replies kept."""

    input_ids: list[int]
    labels: list[int]
    turns: int = 0

    @property
    def trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass
class EncodeStats:
    """What truncation and masking did to a data set, for the log and the run summary."""

    dialogues: int = 0
    kept: int = 0
    dropped_dialogues: int = 0
    dropped_turns: int = 0
    untrained_dialogues: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "notes"}


def assistant_spans(tokenizer, messages: list[dict], trained: list[bool],
                    where: tuple[str | None, int | None] = (None, None),
                    tools: list[dict] | None = None) -> tuple[str, list]:
    """The whole dialogue's text and the (start, end) character span of each trained reply
    (a reply's tool calls included: they are assistant text to learn)."""
    messages = neutralize(tokenizer, messages)  # so the reply search sees rendered contents
    full = render(tokenizer, messages, tools=tools)
    spans, cursor = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or not trained[i]:
            continue
        upto = render(tokenizer, messages[:i + 1], tools=tools)
        prompt = render(tokenizer, messages[:i], generation_prompt=True, tools=tools) if i else ""
        start = len(prompt) if prompt and upto.startswith(prompt) else _find_reply(
            upto, message["content"])
        end = len(upto.rstrip())
        if start < 0 or end <= start:
            raise DataError("the chat template does not render this assistant turn's text",
                            where[0], where[1], f"messages[{i}].content")
        if not full.startswith(upto):  # template renders earlier turns differently later on
            start, end = _relocate(full, upto[start:end], cursor, where, i)
        spans.append((start, end))
        cursor = end
    return full, spans


def _find_reply(text: str, content: str) -> int:
    """Where the last rendered reply starts (templates may strip its whitespace)."""
    position = text.rfind(content)
    return position if position >= 0 or not content.strip() else text.rfind(content.strip())


def _relocate(full: str, piece: str, cursor: int, where, i: int) -> tuple[int, int]:
    start = full.find(piece, cursor)
    if start < 0:
        raise DataError("the chat template renders this assistant turn differently when more "
                        "turns follow; cannot place its loss mask", where[0], where[1],
                        f"messages[{i}]")
    return start, start + len(piece)


def tokenize_with_spans(tokenizer, text: str, spans: list[tuple[int, int]]):
    """(ids, labels, per-span index of the last token) for ``text``; labels -100 off-span."""
    try:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError) as exc:
        raise ConfigError("chat training needs a fast tokenizer (offset mapping): "
                          f"{exc}") from None
    ids = list(encoded["input_ids"])
    labels, ends = [IGNORE] * len(ids), [0] * len(spans)
    span_index = 0
    for t, (a, b) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and a >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        start, end = spans[span_index]
        if b > start and a < end and b > a:
            labels[t] = ids[t]
            ends[span_index] = t + 1
    return ids, labels, ends


def encode_dialogue(tokenizer, dialogue: Dialogue, max_length: int | None = None
                    ) -> tuple[EncodedDialogue | None, int]:
    """Encode one dialogue; cut whole turns from the end to fit ``max_length``.

    Returns (encoded or None when no trained reply fits, number of trained replies dropped).
    Trailing user turns are dropped: they carry no loss and would only cost compute.
    """
    messages = message_dicts(dialogue)
    trained = [m.role == "assistant" and m.weight != 0 for m in dialogue.messages]
    if not any(trained):
        return None, 0
    last = max(i for i, t in enumerate(trained) if t)
    text, spans = assistant_spans(tokenizer, messages[:last + 1], trained,
                                  (dialogue.source, dialogue.line), dialogue_tools(dialogue))
    ids, labels, ends = tokenize_with_spans(tokenizer, text, spans)
    keep = len(spans)
    if max_length:
        while keep and ends[keep - 1] > max_length:
            keep -= 1
    if keep == 0:
        return None, len(spans)
    cut = ends[keep - 1]
    return EncodedDialogue(ids[:cut], labels[:cut], keep), len(spans) - keep


def encode_dialogues(tokenizer, dialogues: list[Dialogue], max_length: int | None = None
                     ) -> tuple[list[EncodedDialogue], EncodeStats]:
    """Encode a data set and count what truncation dropped (logged, never silent)."""
    stats, encoded = EncodeStats(dialogues=len(dialogues)), []
    for dialogue in dialogues:
        item, dropped = encode_dialogue(tokenizer, dialogue, max_length)
        stats.dropped_turns += dropped
        if item is None:
            if dropped:
                stats.dropped_dialogues += 1
            else:
                stats.untrained_dialogues += 1
            continue
        encoded.append(item)
        stats.tokens += len(item.input_ids)
        stats.trained_tokens += item.trained
    stats.kept = len(encoded)
    if stats.dropped_turns:
        stats.notes.append(f"max_length {max_length}: dropped {stats.dropped_turns} assistant "
                           f"turn(s), {stats.dropped_dialogues} whole dialogue(s) did not fit")
    if stats.untrained_dialogues:
        stats.notes.append(f"{stats.untrained_dialogues} dialogue(s) have no trained assistant "
                           "turn (none, or all weight 0) and were skipped")
    for note in stats.notes:
        log.warning(note)
    return encoded, stats


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant reply: eos plus the template's end-of-turn marker."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    probe = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]
    text, spans = assistant_spans(tokenizer, probe, [False, True])
    token_ids, labels, _ = tokenize_with_spans(tokenizer, text, spans)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    trained = [t for t, label in zip(token_ids, labels) if label != IGNORE]
    if trained and trained[-1] in special:
        ids.add(trained[-1])
    return sorted(ids)
