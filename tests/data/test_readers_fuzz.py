"""Fuzzing the readers: whatever bytes, text or JSON a file holds, reading it ends in a
clear DataError or in records / a report, never in another exception."""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogtune.data.quality.check import check_files
from dialogtune.data.transform.convert import convert_loaded, read_for_conversion
from dialogtune.data.transform.fix import FixOptions, plan_fix
from dialogtune.data.formats import read, read_dialogues, read_intents
from dialogtune.errors import DataError

FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = ["text", "label", "intent", "category", "messages", "role", "content", "weight",
        "conversations", "from", "value", "instruction", "input", "output", "system", "history"]
ROLES = ["system", "user", "assistant", "human", "gpt", "tool", ""]

# lone surrogates included: JSON escapes such as "\ud800" put them into Python strings
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) |
    any_text | st.sampled_from(ROLES),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    max_leaves=20)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES), "content": any_text | st.integers()}),
    max_size=5)
dialogue_objects = st.one_of(
    st.fixed_dictionaries({"messages": messages}),
    st.fixed_dictionaries({"conversations": st.lists(st.fixed_dictionaries(
        {"from": st.sampled_from(ROLES), "value": st.text(max_size=20)}), max_size=4)}),
    st.fixed_dictionaries({"instruction": st.text(max_size=20), "output": st.text(max_size=20),
                           "input": st.text(max_size=5) | st.none()}),
    json_values)
intent_objects = st.fixed_dictionaries(
    {"text": any_text | st.sampled_from(["", " ", "a@b.co", "hi there"]) | json_values},
    optional={"label": st.sampled_from(["a", "b", "", " "]) | st.integers() | json_values})
csv_text = st.lists(st.sampled_from(
    ["text,label", "text", "label", ",", '"', '""', "\n", "\r\n", " ", "hi", "4111 1111 1111 1111",
     "a@b.co", "x", "\x00", "é", "\u2028"]), max_size=30).map("".join)
_counter = itertools.count()


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def put(folder: Path, suffix: str, content) -> Path:
    path = folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8",
                                                                             "surrogatepass"))
    return path


class FakeTokenizer:
    model_max_length = 16

    def __call__(self, texts, add_special_tokens=True, **_):
        return {"input_ids": [[0] * len(t.split()) for t in texts]}


def outcome(call, *args):
    """Run a reader: a DataError is a fine answer, anything else escapes and fails."""
    try:
        return call(*args)
    except DataError as exc:
        assert str(exc)
        return None


def every_reader(path: Path) -> None:
    outcome(read_intents, path)
    outcome(read_dialogues, path)
    loaded = outcome(read, path, None, False)  # lenient
    if loaded is not None:
        report = outcome(check_files, path, None, None, FakeTokenizer())
        assert report is None or json.dumps(report)
        outcome(plan_fix, loaded, FixOptions(True, True, True))
    converted = outcome(read_for_conversion, path)
    if converted is not None:
        for target in ("jsonl", "chat", "alpaca", "openai"):
            outcome(convert_loaded, converted, target)


@FUZZ
@given(content=st.binary(max_size=200), suffix=st.sampled_from([".csv", ".jsonl", ".json",
                                                                 ".yml", ".txt"]))
def test_arbitrary_bytes(folder, content, suffix):
    every_reader(put(folder, suffix, content))


@FUZZ
@given(content=st.text(max_size=200) | csv_text, suffix=st.sampled_from([".csv", ".jsonl",
                                                                        ".json", ".yaml"]))
def test_arbitrary_text(folder, content, suffix):
    every_reader(put(folder, suffix, content))


@FUZZ
@given(records=st.lists(dialogue_objects | json_values, max_size=6) |
       st.lists(intent_objects, max_size=8),
       blank=st.booleans(), suffix=st.sampled_from([".jsonl", ".json"]), array=st.booleans())
def test_arbitrary_json_records(folder, records, blank, suffix, array):
    if array:
        text = json.dumps(records, indent=1)
    else:
        text = ("\n\n" if blank else "\n").join(json.dumps(r) for r in records)
    every_reader(put(folder, suffix, text))


@FUZZ
@given(rows=st.lists(st.tuples(st.text(max_size=15), st.text(max_size=6)), max_size=8))
def test_arbitrary_csv_rows(folder, rows):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    every_reader(put(folder, ".csv", buffer.getvalue()))


# --- cases the fuzzer is unlikely to build ----------------------------------------------

DEEP = "[" * 100_000
SEPARATOR = '{"text": "a\u2028b", "label": "x"}\n{"text": "c", "label": "y"}\n'


def test_lenient_reader_survives_deep_nesting_and_unicode_line_separators(folder):
    loaded = read(put(folder, ".jsonl", '{"text": ' + DEEP + "}\n"), strict=False)
    assert loaded.malformed[0]["message"] == "malformed JSON: nested too deeply"
    with pytest.raises(DataError, match="malformed JSON array"):
        read(put(folder, ".json", DEEP), strict=False)
    loaded = read(put(folder, ".jsonl", SEPARATOR), strict=False)
    assert [(r.text, r.line) for r in loaded.utterances] == [("a\u2028b", 1), ("c", 2)]


def test_intent_reader_keeps_unicode_line_separators_in_strings(folder):
    records = read_intents(put(folder, ".jsonl", SEPARATOR))
    assert [(r.text, r.line) for r in records] == [("a\u2028b", 1), ("c", 2)]


# Found while fuzzing: deep nesting raised RecursionError, U+2028 split JSONL lines.
@pytest.mark.parametrize("reader, suffix", [(read_intents, ".jsonl"), (read_dialogues, ".json")])
def test_training_readers_on_deep_nesting(folder, reader, suffix):
    outcome(reader, put(folder, suffix, DEEP))


def test_dialogue_reader_keeps_unicode_line_separators_in_strings(folder):
    chat = '{"messages": [{"role": "user", "content": "a\u2028b"}]}\n'
    dialogues = outcome(read_dialogues, put(folder, ".jsonl", chat))
    assert dialogues is not None and dialogues[0].messages[0].content == "a\u2028b"
