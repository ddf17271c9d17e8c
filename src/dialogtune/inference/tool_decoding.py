"""Constrained decoding of tool calls: every call a reply makes parses and fits its schema.

A reply is generated under a grammar of the built-in call format (the one
``data.tool_calls.parse_reply`` reads): optional words, then calls written
``<tool_call>{"name": "F", "arguments": {...}}</tool_call>``, one per line, then the end of
the turn. The function name is one of the allowed ones, the arguments follow F's JSON schema
(required keys, enums, types) with the separators ``json.dumps`` writes in training, and no
key a function does not declare (``additionalProperties`` is taken as false where a schema
leaves it open). ``tool_choice`` picks the grammar:

- ``"auto"``: words, or words then calls; once ``<tool_call>`` is written the rest is held
  to the grammar;
- ``"none"``: words only, the text ``<tool_call>`` can never appear;
- ``"required"``: the reply starts with a call;
- ``{"type": "function", "function": {"name": F}}``: exactly one call, to F.

In ``auto`` and ``required`` more calls may follow the first (OpenAI's default
``parallel_tool_calls``); a named function is called once. A reply cut by the token limit
inside a call leaves that call unfinished: ``parse_reply`` reports it in ``invalid``, never
as a call. Without tools a reply makes no call (``"none"``).

The grammar is enforced by llguidance (a Lark grammar with inline JSON schemas, masks over
the vocabulary computed in Rust). Chosen over lm-format-enforcer, outlines and xgrammar by
``benchmarks/tools_decoding.py`` (see benchmarks/RESULTS.md): on SmolLM2-135M its one-off
tokenizer set-up and per-token mask cost were the smallest of the four.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from ..data.tool_calls import (CALL_CLOSE, CALL_OPEN, ParsedReply, ToolCallError,
                               call_problems, function_specs)
from ..errors import DialogtuneError, PromptError

AUTO, NONE, REQUIRED = "auto", "none", "required"
# json.dumps' default separators: what ToolCall.to_text writes, so what models are tuned on
JSON_STYLE = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}
NO_CALL_TEXT = f"/(?s:.*)/ & ~/(?s:.*){CALL_OPEN}(?s:.*)/"


class UnsupportedTokenizer(DialogtuneError):
    """llguidance cannot read this tokenizer's vocabulary (a word-level one, say)."""


@dataclass(frozen=True)
class ToolChoice:
    """What a reply may do: ``mode`` (none, auto, required), which functions a call may
    name, and whether more calls may follow the first."""

    mode: str
    functions: tuple[str, ...] = ()
    parallel: bool = True


def resolve_tool_choice(tool_choice, tools) -> ToolChoice:
    """The ``ToolChoice`` of an OpenAI ``tool_choice`` value for these ``tools``;
    PromptError (one line) for a value that is not one or names no defined function."""
    try:
        names = tuple(function_specs(tools))
    except ToolCallError as exc:
        raise PromptError(f"tools: {exc}") from None
    if tool_choice is None or tool_choice == AUTO:
        return ToolChoice(AUTO, names) if names else ToolChoice(NONE)
    if tool_choice == NONE:
        return ToolChoice(NONE)
    if tool_choice == REQUIRED:
        if not names:
            raise PromptError("tool_choice 'required' needs at least one tool")
        return ToolChoice(REQUIRED, names)
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or tool_choice.get("type", "function") != "function":
        raise PromptError("tool_choice must be 'auto', 'none', 'required' or "
                          "{\"type\": \"function\", \"function\": {\"name\": ...}}")
    if name not in names:
        raise PromptError(f"tool_choice names '{name}', which is not among the tools "
                          f"({', '.join(names) or 'none given'})")
    return ToolChoice(REQUIRED, (name,), parallel=False)


def closed_schema(schema):
    """``schema`` with ``additionalProperties: false`` on every object schema that leaves
    it unset: a model must not invent keys. Calls stay valid under the original schema."""
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed_schema(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _lark_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a Lark string literal


def _function_rule(index: int, spec: dict) -> str:
    """The grammar rule of one call body: ``{"name": "F", "arguments": <schema>}``."""
    head = '{"name": ' + json.dumps(spec["name"], ensure_ascii=False) + ', "arguments": '
    schema = {**closed_schema(spec["parameters"]), "x-guidance": JSON_STYLE}
    return f"fn{index}: {_lark_string(head)} %json {json.dumps(schema)} \"}}\""


def call_grammar(tools, choice: ToolChoice) -> str:
    """The Lark grammar (llguidance dialect) of a whole reply under ``choice``."""
    if choice.mode == NONE:
        return f"%llguidance {{}}\nstart: NO_CALL\nNO_CALL: {NO_CALL_TEXT}\n"
    specs = function_specs(tools)
    rules = [_function_rule(i, specs[name]) for i, name in enumerate(choice.functions)]
    bodies = " | ".join(f"fn{i}" for i in range(len(rules)))
    # "\n"? around the JSON: the Hermes / Qwen templates write the call on its own line
    lines = ["%llguidance {}",
             f'body: "\\n"? ({bodies}) "\\n"? {_lark_string(CALL_CLOSE)}',
             'calls: body ("\\n" ' + _lark_string(CALL_OPEN) + " body)*" if choice.parallel
             else "calls: body"]
    if choice.mode == AUTO:  # lazy: the words end where the first call opens
        lines += ["start: NO_CALL | words calls", f"NO_CALL: {NO_CALL_TEXT}",
                  f"words[lazy]: /(?s:.*)/ {_lark_string(CALL_OPEN)}"]
    else:
        lines.append(f"start: {_lark_string(CALL_OPEN)} calls")
    return "\n".join(lines + rules) + "\n"


def guidance_tokenizer(tokenizer, vocab_size: int, stop_ids: list[int]):
    """The llguidance view of ``tokenizer`` (its byte trie over the vocabulary; ~0.4-0.9 s
    for SmolLM2's 49k tokens, so built once and kept on the tokenizer). Any of ``stop_ids``
    ends the reply where the grammar allows it to end."""
    import llguidance.hf

    stops = tuple(stop_ids) or (tokenizer.eos_token_id,)
    cache = tokenizer.__dict__.setdefault("_dialogtune_llguidance", {})
    key = (vocab_size, stops)
    if key not in cache:
        try:
            cache[key] = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size,
                                                      eos_token=list(stops))
        except ValueError as exc:  # e.g. "Only fast tokenizers are supported"
            raise UnsupportedTokenizer(f"tool calls cannot be constrained for this "
                                       f"tokenizer: {exc}") from None
    return cache[key]


class CallConstraint:
    """One reply's grammar as a logits processor: ``(input_ids, scores) -> scores`` with
    every token the grammar forbids at -inf. Called once per step, as transformers'
    ``generate`` and ``generation.decode`` do; the token chosen at the previous step is
    the last of ``input_ids``."""

    def __init__(self, matcher, vocab_size: int):
        self.matcher, self.vocab_size = matcher, vocab_size
        self.words = np.zeros((vocab_size + 31) // 32, dtype=np.int32)
        self.length: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.length is not None and input_ids.shape[1] > self.length:
            self.matcher.consume_token(int(input_ids[0, -1]))
        self.length = input_ids.shape[1]
        if self.matcher.is_error():
            raise DialogtuneError(f"constrained decoding failed: {self.matcher.get_error()}")
        self.matcher.unsafe_compute_mask_ptr(self.words.ctypes.data, self.words.nbytes)
        allowed = np.unpackbits(self.words.view(np.uint8), bitorder="little")
        allowed = torch.from_numpy(allowed[:self.vocab_size].view(bool))
        if not bool(allowed.all()):  # free words allow every token: skip the ~0.2 ms fill
            scores[:, :self.vocab_size].masked_fill_(~allowed, float("-inf"))
        scores[:, self.vocab_size:] = float("-inf")  # padding rows of a larger head
        return scores


def call_constraint(tokenizer, vocab_size: int, stop_ids: list[int], tools,
                    tool_choice=AUTO) -> CallConstraint:
    """A fresh ``CallConstraint`` for one reply; PromptError when ``tool_choice`` or a
    tool's schema is unusable (a schema feature llguidance cannot enforce, for one)."""
    import llguidance

    choice = resolve_tool_choice(tool_choice, tools)
    grammar = llguidance.LLMatcher.grammar_from_lark(call_grammar(tools, choice))
    matcher = llguidance.LLMatcher(guidance_tokenizer(tokenizer, vocab_size, stop_ids),
                                   grammar)
    if matcher.is_error():
        first = matcher.get_error().strip().splitlines()[0]
        raise PromptError(f"the tools cannot be enforced while decoding: {first}")
    return CallConstraint(matcher, vocab_size)


def checked_reply(reply: ParsedReply, tools, tool_choice=AUTO) -> ParsedReply:
    """``reply`` with every call the grammar would have forbidden moved to ``invalid``: the
    fallback for a tokenizer llguidance cannot read, where decoding runs free. The promise
    stays (every call returned fits its schema and ``tool_choice``); only a call made is
    no longer guaranteed."""
    choice = resolve_tool_choice(tool_choice, tools)
    specs = function_specs(tools)
    allowed = () if choice.mode == NONE else choice.functions
    calls, invalid = [], list(reply.invalid)
    for call in reply.calls:
        ok = call.name in allowed and not call_problems(call, specs)
        ok = ok and (choice.parallel or not calls)
        (calls if ok else invalid).append(call if ok else call.to_text())
    return ParsedReply(reply.content, calls, invalid)
