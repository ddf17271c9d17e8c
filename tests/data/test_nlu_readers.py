"""NLU readers: JSONL, Rasa YAML, dialogue turns and CoNLL BIO give the same checked
examples; bad spans are errors naming file, line, field and span (strict raises the first,
lenient lists them all through the same code)."""

from __future__ import annotations

import json

import pytest

from dialogtune.data.formats import read
from dialogtune.data.formats.nlu import read_nlu, read_nlu_examples
from dialogtune.data.formats.rasa import parse_entities
from dialogtune.data.records import Span
from dialogtune.errors import DataError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_jsonl_reads_spans_sorted_with_values(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"text": "add step to me to the 50 clásicos playlist", "intent": "Add",
         "slots": [{"slot": "playlist", "start": 22, "end": 33, "value": "50 clásicos"},
                   {"slot": "entity", "start": 4, "end": 14}]},
        {"text": "hi there", "intent": "Greet"}])
    first, second = read_nlu_examples(path)
    assert first.slots == (Span("entity", 4, 14), Span("playlist", 22, 33))
    assert [first.value(s) for s in first.slots] == ["step to me", "50 clásicos"]
    assert (first.intent, first.label, first.line) == ("Add", "Add", 1)
    assert second.slots == () and second.line == 2


@pytest.mark.parametrize("slots, message, field", [
    ([{"slot": "a", "start": 7, "end": 12}, {"slot": "b", "start": 4, "end": 12}],
     "span 'a' 7:12 overlaps span 'b' 4:12", "slots[0]"),
    ([{"slot": "a", "start": 7, "end": 40}], "span 'a' 7:40 falls outside the text", "slots[0]"),
    ([{"slot": "city", "start": 7, "end": 10}], "span 'city' 7:10 cuts a word in half",
     "slots[0]"),
    ([{"slot": "city", "start": 8, "end": 12}], "cuts a word in half", "slots[0]"),
    ([{"slot": "city", "start": 6, "end": 12}], "starts or ends with whitespace", "slots[0]"),
    ([{"slot": "city", "start": 7, "end": 7}], "empty or reversed", "slots[0]"),
    ([{"slot": "city", "start": 7, "end": 12, "value": "london"}], "but its value is",
     "slots[0]"),
    ([{"slot": "city", "start": "7", "end": 12}], "whole numbers", "slots[0]"),
])
def test_bad_span_is_an_error_naming_file_line_field_and_span(tmp_path, slots, message,
                                                               field):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"text": "ok", "intent": "A"}, {"text": "fly to paris", "intent": "Book",
                                        "slots": slots}])
    with pytest.raises(DataError) as caught:
        read_nlu(path)
    assert caught.value.line == 2 and caught.value.field == field
    assert message in caught.value.reason and str(path) in str(caught.value)


def test_lenient_reading_lists_every_problem_and_keeps_good_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"text": "fly to paris", "intent": "Book", "slots": [{"slot": "c", "start": 7,
                                                                "end": 10}]},
        {"text": "fly to rome", "intent": "Book", "slots": [{"slot": "c", "start": 7,
                                                               "end": 11}]},
        {"text": "fly", "intent": ""}])
    out = read_nlu(path, strict=False)
    assert [e.text for e in out.examples] == ["fly to rome"]
    assert [(p.line, p.field) for p in out.problems] == [(1, "slots[0]"), (3, "intent")]
    assert out.raws[0]["text"] == "fly to rome"


def test_word_cut_allows_punctuation_and_accents(tmp_path):
    text = "send $1,630. to josé😀 now"
    rows = [{"text": text, "intent": "Pay", "slots": [
        {"slot": "amount", "start": 5, "end": 11}, {"slot": "name", "start": 16, "end": 20}]}]
    (example,) = read_nlu_examples(write_jsonl(tmp_path / "d.jsonl", rows))
    assert [example.value(s) for s in example.slots] == ["$1,630", "josé"]
    rows[0]["slots"] = [{"slot": "name", "start": 16, "end": 19}]  # "jos" of "josé"
    with pytest.raises(DataError, match="cuts a word in half"):
        read_nlu(write_jsonl(tmp_path / "e.jsonl", rows))


RASA = """\
version: "3.1"
nlu:
- intent: book
  examples: |
    - fly to [Paris](city) on [monday]{"entity": "day", "role": "start"}
    - fly to [New York](city:NYC)
    - just fly
- synonym: NYC
  examples: |
    - big apple
"""


def test_rasa_annotations_become_spans_on_the_stripped_text(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA)
    first, second, third = read_nlu_examples(path)
    assert first.text == "fly to Paris on monday" and first.line == 5
    assert [(s.slot, first.value(s)) for s in first.slots] == [("city", "Paris"),
                                                                ("day", "monday")]
    assert second.slots == (Span("city", 7, 15),) and second.value(second.slots[0]) == "New York"
    assert third.slots == () and third.intent == "book"
    # the intent reader still strips the annotations and keeps the same lines
    assert [(u.text, u.line) for u in read(path, "intent").utterances] == [
        ("fly to Paris on monday", 5), ("fly to New York", 6), ("just fly", 7)]


def test_rasa_annotation_without_entity_is_a_located_error(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text('nlu:\n- intent: a\n  examples: |\n    - ok\n    - to [x]{"role": "r"}\n')
    with pytest.raises(DataError, match="names no entity") as caught:
        read_nlu(path)
    assert caught.value.line == 5
    assert parse_entities("[a](x)[b](y)") == ("ab", [Span("x", 0, 1), Span("y", 1, 2)])


def test_dialogue_user_turns_with_and_without_context(tmp_path):
    path = write_jsonl(tmp_path / "dlg.jsonl", [{"messages": [
        {"role": "user", "content": "What's my balance?", "intent": "Check", "slots": []},
        {"role": "assistant", "content": "In checking or savings?"},
        {"role": "user", "content": "In checking.", "intent": "Check",
         "slots": [{"slot": "account", "start": 3, "end": 11, "value": "checking"}]},
        {"role": "user", "content": "no label here"}]}])
    plain = read_nlu_examples(path)
    assert [(e.text, e.context) for e in plain] == [("What's my balance?", None),
                                                    ("In checking.", None)]
    with_context = read_nlu_examples(path, context=True)
    assert with_context[1].context == "In checking or savings?"
    assert with_context[1].slots == (Span("account", 3, 11),)
    assert read_nlu(path).format == "dialogue"


def test_dialogue_span_error_names_the_turn(tmp_path):
    path = write_jsonl(tmp_path / "dlg.jsonl", [{"messages": [
        {"role": "user", "content": "To Amir.", "intent": "Pay",
         "slots": [{"slot": "name", "start": 3, "end": 6}]}]}])
    with pytest.raises(DataError, match="cuts a word") as caught:
        read_nlu(path)
    assert caught.value.field == "messages[0].slots[0]"


CONLL = """\
# intent: Book
fly\tO
to\tO
new\tB-city
york\tI-city
monday O

-DOCSTART- O

play O
jazz B-genre
"""


def test_conll_columns_become_text_and_spans(tmp_path):
    path = tmp_path / "d.conll"
    path.write_text(CONLL)
    first, second = read_nlu_examples(path)
    assert (first.text, first.intent, first.line) == ("fly to new york monday", "Book", 2)
    assert first.slots == (Span("city", 7, 15),)
    assert (second.text, second.intent, second.slots) == ("play jazz", None,
                                                          (Span("genre", 5, 9),))


def test_conll_i_without_b_is_an_error_unless_repaired(tmp_path):
    path = tmp_path / "d.bio"
    path.write_text("# intent: A\nfly O\nnew I-city\nyork I-city\n\nx O\ny BX\n")
    with pytest.raises(DataError, match="follows 'O'") as caught:
        read_nlu(path)
    assert caught.value.line == 3 and caught.value.field == "tag"
    out = read_nlu(path, strict=False, repair_bio=True)
    assert out.examples[0].slots == (Span("city", 4, 12),)
    assert [(p.line, "unknown tag 'BX'" in p.message) for p in out.problems] == [(7, True)]


def test_every_format_reads_the_same_example(tmp_path):
    """One example written in all four formats reads back identically."""
    jsonl = write_jsonl(tmp_path / "a.jsonl", [{"text": "fly to new york", "intent": "Book",
                                                "slots": [{"slot": "city", "start": 7,
                                                           "end": 15}]}])
    rasa = tmp_path / "a.yml"
    rasa.write_text("nlu:\n- intent: Book\n  examples: |\n    - fly to [new york](city)\n")
    conll = tmp_path / "a.conll"
    conll.write_text("# intent: Book\nfly O\nto O\nnew B-city\nyork I-city\n")
    dialogue = write_jsonl(tmp_path / "d.jsonl", [{"messages": [
        {"role": "user", "content": "fly to new york", "intent": "Book",
         "slots": [{"slot": "city", "start": 7, "end": 15}]}]}])
    frames = {(e.text, e.intent, e.slots) for p in (jsonl, rasa, conll, dialogue)
              for e in read_nlu_examples(p)}
    assert frames == {("fly to new york", "Book", (Span("city", 7, 15),))}
