"""The example tool-calling dialogues: they read cleanly, every call is valid against its
tool's schema, every reply states the looked-up values exactly, and the committed files are
what ``examples/make_tools_examples.py`` writes."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import EXAMPLES
from dialogtune.data.formats import read_dialogues
from dialogtune.data.tool_calls import call_problems, function_specs, message_calls

FILES = ("tools_train.jsonl", "tools_test.jsonl")


def generator():
    spec = importlib.util.spec_from_file_location("make_tools_examples",
                                                  EXAMPLES / "make_tools_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", FILES)
def test_every_call_is_schema_valid_and_every_result_answered(name):
    tools = json.loads((EXAMPLES / "tools.json").read_text(encoding="utf-8"))
    dialogues = read_dialogues(EXAMPLES / name)  # strict: the first problem would raise
    assert len(dialogues) >= 20
    calls = 0
    for dialogue in dialogues:
        assert dialogue.extra["tools"] == tools
        specs = function_specs(dialogue.extra["tools"])
        for message in dialogue.messages:
            for call in message_calls(message.extra):
                assert call_problems(call, specs) == [], (dialogue.extra["id"], call)
                calls += 1
    assert calls >= len(dialogues)
    called = {c.name for d in dialogues for m in d.messages for c in message_calls(m.extra)}
    assert called == set(function_specs(tools))


@pytest.mark.parametrize("name", FILES)
def test_replies_state_the_results_values_exactly(name):
    checked = 0
    for dialogue in read_dialogues(EXAMPLES / name):
        messages = dialogue.messages
        for i, message in enumerate(messages):
            if message.role != "tool":
                continue
            reply = next(m for m in messages[i + 1:] if m.role == "assistant")
            result = json.loads(message.content)
            call = next(c for m in messages[:i] for c in message_calls(m.extra)
                        if c.id == message.extra["tool_call_id"])
            for key, value in result.items():
                if key not in call.arguments and key != "status":
                    assert value in reply.content, (dialogue.extra["id"], key, value)
                    checked += 1
    assert checked > 0


def test_some_turns_need_no_tool_and_some_ask_for_a_missing_argument():
    scenes = generator().SCENES
    prompts = {p for scene in scenes.values() for split in ("train", "test")
               for p in scene[split]["prompt"]}
    plain = asking = 0
    for dialogue in read_dialogues(EXAMPLES / "tools_train.jsonl"):
        messages = dialogue.messages
        for i, message in enumerate(messages[:-1]):
            if message.role != "assistant" or messages[i - 1].role != "user":
                continue
            if message.content in prompts:  # then the user answers and the call follows
                assert messages[i + 1].role == "user" and message_calls(messages[i + 2].extra)
                asking += 1
            elif not message_calls(message.extra):
                plain += 1
    assert plain >= 20 and asking >= 20


def test_committed_files_are_what_the_generator_writes(tmp_path):
    generator().main(["--out", str(tmp_path)])
    for name in ("tools.json", *FILES):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
