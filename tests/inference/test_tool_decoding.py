"""Constrained tool calls (``inference/tool_decoding.py``): every call a reply makes parses
and fits its function's schema, whatever the model would rather write, and ``tool_choice``
decides between words and calls.

Two kinds of "model" push against the grammar: random scores steered towards a script of
(often invalid) call text, cheap enough for many seeds; and the tiny Llama of
``helpers.chat`` with a forward hook on its head that favours a script's next token, so
``respond`` / ``stream_respond`` run end to end through transformers' ``generate`` and
through the prompt-learning loop.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogtune.data.tool_calls import (CALL_OPEN, ToolCall, call_problems, function_specs,
                                        parse_reply)
from dialogtune.errors import PromptError
from dialogtune.inference.chat import ChatPredictor
from dialogtune.inference.tool_decoding import (AUTO, NONE, REQUIRED, ToolChoice,
                                                call_constraint, call_grammar, closed_schema,
                                                resolve_tool_choice)


def tool(name: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


ACCOUNTS = ["checking", "savings"]
TOOLS = [  # bounded strings and numbers: a call of a random model ends within the budget
    tool("get_balance", {"account": {"type": "string", "enum": ACCOUNTS},
                         "currency": {"type": "string", "maxLength": 3}}, ["account"]),
    tool("transfer", {"amount": {"type": "integer", "minimum": 1, "maximum": 500},
                      "to": {"type": "string", "maxLength": 6},
                      "rate": {"type": "number", "minimum": 0, "maximum": 1},
                      "urgent": {"type": "boolean"}}, ["amount", "to"])]
SPECS = function_specs(TOOLS)
NAMED = {"type": "function", "function": {"name": "transfer"}}
SCRIPTS = [  # what the "model" tries to write; all but the first break the schema
    'Let me do that.\n<tool_call>{"name": "transfer", "arguments": {"amount": 12, '
    '"to": "Amir"}}</tool_call>',
    '<tool_call>{"name": "wire_money", "arguments": {}}</tool_call>',
    '<tool_call>{"name": "get_balance", "arguments": {"account": "gold", "pin": 1}}</tool_call>',
    '<tool_call>{"name": "transfer", "arguments": {"to": "Amir"}}</tool_call>',
    '<tool_call>{"name": "transfer", "arguments": {"amount": "ten", "to": 5, "urgent": "y"}}'
    '</tool_call>',
    "Sure: <tool_call>{'name': 'transfer'}</tool_call> done"]
MESSAGES = [{"role": "user", "content": "Send 20 dollars to Amir."}]


# --- pure pieces ------------------------------------------------------------------------

def test_tool_choice_values_resolve_as_openai_defines_them():
    assert resolve_tool_choice(AUTO, TOOLS) == ToolChoice(AUTO, ("get_balance", "transfer"))
    assert resolve_tool_choice(None, TOOLS).mode == AUTO
    assert resolve_tool_choice(AUTO, None) == ToolChoice(NONE)  # no tools: no call
    assert resolve_tool_choice(NONE, TOOLS) == ToolChoice(NONE)
    assert resolve_tool_choice(REQUIRED, TOOLS).functions == ("get_balance", "transfer")
    assert resolve_tool_choice(NAMED, TOOLS) == ToolChoice(REQUIRED, ("transfer",), False)


@pytest.mark.parametrize("choice, tools, message", [
    ("sometimes", TOOLS, "tool_choice must be"),
    ({"type": "function"}, TOOLS, "tool_choice must be"),
    ({"type": "code", "function": {"name": "transfer"}}, TOOLS, "tool_choice must be"),
    ({"type": "function", "function": {"name": "wire"}}, TOOLS, "names 'wire'"),
    (REQUIRED, [], "needs at least one tool"),
    (AUTO, "not a list", "tools:")])
def test_bad_tool_choice_or_tools_is_a_one_line_prompt_error(choice, tools, message):
    with pytest.raises(PromptError, match=message) as caught:
        resolve_tool_choice(choice, tools)
    assert "\n" not in str(caught.value)


def test_closed_schema_closes_open_objects_and_keeps_explicit_choices():
    schema = {"type": "object", "properties": {
        "inner": {"type": "object", "properties": {"a": {"type": "string"}}},
        "free": {"type": "object", "properties": {}, "additionalProperties": True}}}
    closed = closed_schema(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["inner"]["additionalProperties"] is False
    assert closed["properties"]["free"]["additionalProperties"] is True
    assert "additionalProperties" not in schema  # the caller's schema is untouched


def test_grammar_of_each_choice_names_only_the_callable_functions():
    assert "fn0" not in call_grammar(TOOLS, resolve_tool_choice(NONE, TOOLS))
    named = call_grammar(TOOLS, resolve_tool_choice(NAMED, TOOLS))
    assert '\\"transfer\\"' in named and "get_balance" not in named
    assert "body (" not in named  # one call, no second
    assert call_grammar(TOOLS, resolve_tool_choice(REQUIRED, TOOLS)).count("fn") == 4


# --- the constraint against random, script-steered scores -------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from helpers.chat import build_tokenizer

    return build_tokenizer()


def stop_ids(tokenizer) -> list[int]:
    return [tokenizer.convert_tokens_to_ids("<|im_end|>")]


def steered_reply(tokenizer, choice, script: str, seed: int, budget: int = 150,
                  pull: float = 5.0) -> tuple[str, bool]:
    """Sample ``budget`` tokens at most from random scores plus ``pull`` on the script's
    next token, under the constraint; (text, whether the reply ended by itself)."""
    vocab, stops = len(tokenizer), stop_ids(tokenizer)
    constraint = call_constraint(tokenizer, vocab, stops, TOOLS, choice)
    script_ids = tokenizer(script)["input_ids"] + stops
    generator, ids = torch.Generator().manual_seed(seed), [0]
    for step in range(budget):
        scores = torch.randn(1, vocab, generator=generator)
        if step < len(script_ids):
            scores[0, script_ids[step]] += pull
        scores = constraint(torch.tensor([ids]), scores)
        token = int(torch.multinomial(torch.softmax(scores[0], -1), 1, generator=generator))
        if token in stops:
            return tokenizer.decode(ids[1:]), True
        ids.append(token)
    return tokenizer.decode(ids[1:]), False


def check_reply(text: str, ended: bool, choice) -> None:
    """What every reply under ``choice`` must satisfy."""
    reply = parse_reply(text)
    for call in reply.calls:
        assert call_problems(call, SPECS) == [], (text, call)
        if call.name == "get_balance":
            assert call.arguments["account"] in ACCOUNTS
    if ended:  # a call is unfinished only when the token budget ran out
        assert reply.invalid == [], text
    assert len(reply.invalid) <= 1
    if choice == NONE:
        assert CALL_OPEN not in text and not reply.calls
    if choice in (REQUIRED, NAMED):
        assert text.startswith(CALL_OPEN) and (reply.calls or not ended)
    if choice == NAMED:
        assert [c.name for c in reply.calls] in ([], ["transfer"])
        assert not ended or len(reply.calls) == 1


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), script=st.sampled_from(SCRIPTS),
       choice=st.sampled_from([AUTO, NONE, REQUIRED, NAMED]),
       pull=st.sampled_from([0.0, 5.0, 50.0]))  # how hard the model holds to the script
def test_sampled_replies_hold_only_valid_calls_whatever_the_model_pushes(
        tokenizer, seed, script, choice, pull):
    text, ended = steered_reply(tokenizer, choice, script, seed, pull=pull)
    check_reply(text, ended, choice)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_model_that_starts_a_call_in_auto_finishes_a_valid_one(tokenizer, script):
    text, ended = steered_reply(tokenizer, AUTO, script, seed=1, pull=50.0)
    check_reply(text, ended, AUTO)
    assert len(parse_reply(text).calls) >= 1, text  # diverted scripts may go on calling
    if script == SCRIPTS[0]:  # a valid script goes through word for word, then ends
        assert ended and text == script


def test_none_holds_back_the_marker_a_model_insists_on(tokenizer):
    text, _ = steered_reply(tokenizer, NONE, SCRIPTS[0], seed=0, pull=50.0)
    assert text.startswith("Let me do that.\n") and CALL_OPEN not in text


# --- end to end: ChatPredictor on the tiny Llama -------------------------------------------

@pytest.fixture(scope="module")
def predictor(tool_folder) -> ChatPredictor:
    return ChatPredictor.from_model(tool_folder)


@contextmanager
def scripted(model, tokenizer, script: str, pull: float = 50.0):
    """The model's head favours the script's next token at each forward (the first: the
    prompt's), then the end of the turn; the grammar still decides what is allowed."""
    ids = tokenizer(script)["input_ids"] + stop_ids(tokenizer)
    step = [0]

    def favour(module, inputs, output):
        if step[0] < len(ids):
            output[..., -1, ids[step[0]]] += pull
        step[0] += 1
        return output

    handle = model.get_output_embeddings().register_forward_hook(favour)
    try:
        yield
    finally:
        handle.remove()


def check_parsed(reply, choice) -> None:
    for call in reply.calls:
        assert call_problems(call, SPECS) == [], reply
    assert len(reply.invalid) <= 1  # only a call cut by the token limit
    if choice in (REQUIRED, NAMED):
        assert reply.calls and reply.content == ""
    if choice == NAMED:
        assert [c.name for c in reply.calls] == ["transfer"] and not reply.invalid


def test_auto_passes_words_and_a_valid_call_through_unchanged(predictor):
    with scripted(predictor.model, predictor.tokenizer, SCRIPTS[0]):
        reply = predictor.respond(MESSAGES, TOOLS, max_new_tokens=120)
    assert reply.content == "Let me do that."
    assert reply.calls == [ToolCall("transfer", {"amount": 12, "to": "Amir"}, "call_1")]


@pytest.mark.parametrize("script", SCRIPTS[1:])
@pytest.mark.parametrize("choice", [REQUIRED, NAMED])
def test_a_call_that_breaks_the_schema_comes_out_valid(predictor, script, choice):
    with scripted(predictor.model, predictor.tokenizer, script):
        reply = predictor.respond(MESSAGES, TOOLS, max_new_tokens=120, tool_choice=choice)
    check_parsed(reply, choice)
    if choice == REQUIRED and '"get_balance"' in script:  # the name holds; "gold" cannot
        assert reply.calls[0].name == "get_balance"
        assert reply.calls[0].arguments["account"] in ACCOUNTS
        assert "pin" not in reply.calls[0].arguments


def test_none_gives_words_even_when_the_model_wants_to_call(predictor):
    with scripted(predictor.model, predictor.tokenizer, SCRIPTS[0]):
        reply = predictor.respond(MESSAGES, TOOLS, max_new_tokens=40, tool_choice=NONE)
    assert reply.calls == [] and reply.invalid == []
    assert reply.content.startswith("Let me do that.") and CALL_OPEN not in reply.content


def test_stream_respond_yields_the_words_then_the_valid_calls(predictor):
    with scripted(predictor.model, predictor.tokenizer, SCRIPTS[4]):  # wrong types
        pieces = list(predictor.stream_respond(MESSAGES, TOOLS, max_new_tokens=120,
                                               tool_choice=AUTO))
    calls = [p for p in pieces if isinstance(p, ToolCall)]
    assert calls and all(isinstance(p, ToolCall) for p in pieces[-len(calls):])
    assert all(call_problems(c, SPECS) == [] for c in calls)
    assert not any(CALL_OPEN in p for p in pieces if isinstance(p, str))


def test_sampled_replies_of_a_random_model_make_only_valid_calls(predictor):
    for seed in range(4):
        for choice in (REQUIRED, NAMED):
            reply = predictor.respond(MESSAGES, TOOLS, max_new_tokens=200, temperature=1.0,
                                      top_p=0.95, seed=seed, tool_choice=choice)
            check_parsed(reply, choice)


def test_a_bad_tool_choice_fails_before_anything_is_generated(predictor):
    with pytest.raises(PromptError, match="names 'wire'"):
        predictor.respond(MESSAGES, TOOLS, tool_choice={"function": {"name": "wire"}})
    with pytest.raises(PromptError, match="needs at least one tool"):
        next(predictor.stream_respond(MESSAGES, None, tool_choice=REQUIRED))


@torch.no_grad()
def test_a_prompt_tuning_model_decodes_under_the_grammar_too(tool_folder):
    """peft prompt-learning models generate through ``generation.decode``: the same
    constraint applies there."""
    from dialogtune.config import StrategyConfig
    from dialogtune.models.loading import load_causal_lm
    from dialogtune.strategies import CAUSAL_LM, apply_strategy

    model, tokenizer, _ = load_causal_lm(tool_folder)
    model = apply_strategy(model, StrategyConfig(name="prompt-tuning", num_virtual_tokens=4),
                           CAUSAL_LM)
    prompt_tuned = ChatPredictor(model, tokenizer, "prompt-tuned")
    with scripted(model, tokenizer, SCRIPTS[2]):  # "gold" is no account type
        reply = prompt_tuned.respond(MESSAGES, TOOLS, max_new_tokens=120, tool_choice=REQUIRED)
    check_parsed(reply, REQUIRED)
    assert reply.calls[0].arguments["account"] in ACCOUNTS
    reply = prompt_tuned.respond(MESSAGES, TOOLS, max_new_tokens=200, temperature=1.0,
                                 seed=3, tool_choice=NAMED)
    check_parsed(reply, NAMED)


_ACCOUNT = {"type": "string", "enum": ["checking", "savings"]}
BANK_TOOLS = [  # SGD Banks_1's functions, as ../shared/data/sgd_banks_tools writes them
    tool("CheckBalance", {"account_type": _ACCOUNT}, ["account_type"]),
    tool("TransferMoney", {"account_type": _ACCOUNT, "amount": {"type": "string"},
                           "recipient_account_name": {"type": "string"},
                           "recipient_account_type": _ACCOUNT},
         ["account_type", "amount", "recipient_account_name"])]


@pytest.mark.slow
def test_the_embedded_smollm2_writes_a_valid_call_when_one_is_required():
    """The untuned model answers in words when free to; required, it calls a bank function
    with arguments that fit (greedy: the reply of benchmarks/tools_decoding.py)."""
    predictor = ChatPredictor.from_model("smollm2")
    messages = [{"role": "user", "content": "Please send $250 from my checking account to "
                                            "Amir's savings account."}]
    reply = predictor.respond(messages, BANK_TOOLS, max_new_tokens=48, tool_choice=REQUIRED)
    assert reply.calls and reply.content == ""
    assert reply.calls[0].name in ("CheckBalance", "TransferMoney")
    assert all(call_problems(c, function_specs(BANK_TOOLS)) == [] for c in reply.calls)
    assert json.loads(reply.calls[0].to_openai()["function"]["arguments"])


def test_unconstrained_fallback_drops_the_calls_the_grammar_would_forbid():
    """A tokenizer llguidance cannot read decodes freely; ``checked_reply`` keeps only
    calls that fit their schema and ``tool_choice`` (the server's word-level test model)."""
    from dialogtune.data.tool_calls import ParsedReply, ToolCall
    from dialogtune.inference.tool_decoding import checked_reply

    tools = [{"type": "function", "function": {"name": "pay", "parameters": {
        "type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}},
             {"type": "function", "function": {"name": "log", "parameters": {
                 "type": "object", "properties": {}}}}]
    good, bad = ToolCall("pay", {"to": "Ann"}, "c1"), ToolCall("pay", {}, "c2")
    other, unknown = ToolCall("log", {}, "c3"), ToolCall("wire", {}, "c4")
    reply = ParsedReply("ok", [good, bad, other, unknown], [])
    auto = checked_reply(reply, tools)
    assert auto.calls == [good, other] and len(auto.invalid) == 2
    named = checked_reply(reply, tools, {"type": "function", "function": {"name": "pay"}})
    assert named.calls == [good]
    assert checked_reply(reply, tools, "none").calls == []
    assert checked_reply(reply, tools, "none").content == "ok"
