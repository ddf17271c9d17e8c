"""Data tools on joint intent + slot (NLU) data: ``data check``'s slot findings on every
format, ``data convert`` between the four NLU formats (round trips keep text, intent and
spans), and PII redaction that moves slot offsets along."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from dialogtune.cli import main
from dialogtune.data.formats.nlu import read_nlu_examples
from dialogtune.data.quality.check import CheckOptions, check_files
from dialogtune.data.quality.pii import redact_with_spans
from dialogtune.data.quality.report import print_summary, render_html
from dialogtune.data.records import NluExample, Span
from dialogtune.data.transform.convert import convert_file
from dialogtune.data.transform.fix import FixOptions, fix_file
from dialogtune.errors import DataError
from helpers import EXAMPLES



class FakeTokenizer:
    model_max_length = 10**30

    def __call__(self, texts, add_special_tokens=True, **_):
        return {"input_ids": [[0] * (len(t.split()) + 2) for t in texts]}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def rec(text: str, intent: str, *slots: tuple[str, str]) -> dict:
    """A record whose slots are found by value: ("city", "Paris")."""
    found = []
    for slot, value in slots:
        start = text.index(value)
        found.append({"slot": slot, "start": start, "end": start + len(value), "value": value})
    return {"text": text, "intent": intent, "slots": found}


def check(train: Path, test: Path | None = None, **options) -> dict:
    return check_files(train, test, CheckOptions(min_count=1, **options),
                       tokenizer=FakeTokenizer())


# --- data check: span problems, every format ----------------------------------------------

BAD_JSONL = [
    rec("fly to paris", "book", ("city", "paris")),                               # 1 good
    {"text": "fly to rome", "intent": "book",
     "slots": [{"slot": "city", "start": 7, "end": 30}]},                         # 2 bounds
    {"text": "fly to new york", "intent": "book",
     "slots": [{"slot": "city", "start": 7, "end": 15},
               {"slot": "state", "start": 11, "end": 15}]},                       # 3 overlap
    {"text": "fly to berlin", "intent": "book",
     "slots": [{"slot": "city", "start": 7, "end": 10}]},                         # 4 word cut
    {"text": "fly to oslo", "intent": "book",
     "slots": [{"slot": "city", "start": 6, "end": 10, "value": "oslo"}]},        # 5 value
    {"text": "no intent here", "slots": []},                                     # 6 malformed
    rec("book a table in lyon", "dine", ("city", "lyon")),                        # 7 good
]


def test_span_problems_are_findings_with_file_line_and_field(tmp_path):
    report = check(jsonl(tmp_path / "train.jsonl", BAD_JSONL))
    assert report["kind"] == "nlu" and report["records"] == 2  # reading went on
    problems = report["slots"]["span_problems"]
    assert [(p["line"], p["field"]) for p in problems] == [
        (2, "slots[0]"), (3, "slots[1]"), (4, "slots[0]"), (5, "slots[0]")]
    assert "outside the text" in problems[0]["message"]
    assert "overlaps span 'city' 7:15" in problems[1]["message"]
    assert "cuts a word in half" in problems[2]["message"]
    assert "'oslo'" in problems[3]["message"]
    assert all(p["file"].endswith("train.jsonl") for p in problems)
    # the row without an intent is malformed, not a span problem
    assert [(m["line"], m["field"]) for m in report["malformed"]] == [(6, "intent")]
    assert report["counts"]["slot_span_problems"] == 4 and report["counts"]["malformed"] == 1


def test_rasa_entities_are_checked_as_nlu(tmp_path):
    nlu = ("nlu:\n- intent: book\n  examples: |\n    - fly to [paris](city)\n"
           "    - fly to [ber](city)lin\n    - [rome]{\"entity\": \"city\"} please\n")
    report = check(write(tmp_path / "nlu.yml", nlu))
    assert report["kind"] == "nlu" and report["format"] == "rasa"
    problems = report["slots"]["span_problems"]
    assert [(p["line"], p["field"]) for p in problems] == [(5, "entities[0]")]
    assert report["slots"]["counts"] == {"city": 2}


def test_conll_bad_tag_is_a_span_problem_on_its_own_line(tmp_path):
    conll = ("# intent: book\nfly\tO\nto\tO\nparis\tB-city\n\n"
             "# intent: book\nfly\tO\nto\tO\nnew\tO\nyork\tI-city\n")
    report = check(write(tmp_path / "d.conll", conll))
    assert report["kind"] == "nlu" and report["records"] == 1
    assert [(p["line"], p["field"]) for p in report["slots"]["span_problems"]] == [(10, "tag")]


def test_dialogue_turn_slots_are_checked_with_task_nlu(tmp_path):
    dialogue = {"messages": [
        {"role": "user", "content": "pay $20 now", "intent": "pay",
         "slots": [{"slot": "amount", "start": 4, "end": 7, "value": "$20"}]},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "and $30 tomorrow", "intent": "pay",
         "slots": [{"slot": "amount", "start": 5, "end": 8}]}]}
    path = jsonl(tmp_path / "d.jsonl", [dialogue])
    assert check(path)["kind"] == "dialogue"  # a dialogue file stays one by default
    report = check(path, kind="nlu")
    assert report["kind"] == "nlu" and report["records"] == 1
    assert [(p["line"], p["field"]) for p in report["slots"]["span_problems"]] == [
        (1, "messages[2].slots[0]")]


def test_the_example_nlu_data_has_no_span_problem():
    report = check(EXAMPLES / "nlu_train.jsonl", EXAMPLES / "nlu_test.jsonl")
    assert report["kind"] == "nlu" and report["records"] == 468
    assert report["counts"]["slot_span_problems"] == 0 and report["malformed"] == []
    assert report["counts"]["slots_seen_once"] == 0
    assert report["counts"]["slots_test_only"] == 0
    assert len(report["slots"]["counts"]) >= 7
    assert report["label_counts"] == {k: 26 for k in report["label_counts"]}


# --- data check: counts, seen once, leakage, unseen values --------------------------------

TRAIN = [rec("fly to paris", "book", ("city", "paris")),
         rec("fly to rome tomorrow", "book", ("city", "rome"), ("date", "tomorrow")),
         rec("fly to Paris", "book", ("city", "Paris")),
         rec("book for 4 people", "dine", ("party_size", "4")),
         rec("what time is it", "clock")]
TEST = [rec("fly to paris", "book", ("city", "paris")),           # 1 exact leak, seen value
        rec("travel to oslo", "book", ("city", "oslo")),          # 2 unseen city
        rec("go to lima", "book", ("city", "lima")),              # 3 unseen city
        rec("table for 4 at noon", "dine", ("party_size", "4"), ("time", "noon"))]  # 4


@pytest.fixture
def slot_report(tmp_path):
    return check(jsonl(tmp_path / "train.jsonl", TRAIN), jsonl(tmp_path / "test.jsonl", TEST))


def test_slot_counts_and_slots_seen_once(slot_report):
    slots = slot_report["slots"]
    assert slots["counts"] == {"city": 3, "date": 1, "party_size": 1}
    assert slots["values"] == {"city": 2, "date": 1, "party_size": 1}  # Paris == paris
    assert slots["spans"] == 5 and slots["examples_with_slots"] == 4
    assert [(f["slot"], f["line"], f["value"]) for f in slots["seen_once"]] == [
        ("date", 2, "tomorrow"), ("party_size", 4, "4")]
    assert slot_report["counts"]["slots_seen_once"] == 2


def test_leakage_test_only_slots_and_unseen_values(slot_report):
    assert [(f["line"], f["test_lines"]) for f in slot_report["leakage"]["exact"]] == [
        (1, [1]), (3, [1])]
    slots = slot_report["slots"]
    assert slots["test_only"] == [{"slot": "time", "count": 1, "test_lines": [4]}]
    rows = {r["slot"]: r for r in slots["unseen_values"]}
    assert (rows["city"]["test_spans"], rows["city"]["unseen"]) == (3, 2)
    assert rows["city"]["rate"] == pytest.approx(0.667) and rows["city"]["examples"] == [
        "oslo", "lima"]
    assert rows["party_size"]["unseen"] == 0 and rows["time"]["rate"] == 1.0
    assert slots["unseen_value_rate"] == pytest.approx(3 / 5)
    # informative: unseen values are not counted as findings
    assert "unseen_values" not in json.dumps(slot_report["counts"])


def test_intent_test_file_against_nlu_train_reads_as_examples_without_slots(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", TRAIN)
    test = write(tmp_path / "test.csv", "text,label\nfly to paris,book\n")
    report = check(train, test)
    assert report["kind"] == "nlu" and len(report["leakage"]["exact"]) == 2
    assert report["slots"]["unseen_values"] == [] and report["slots"]["unseen_value_rate"] is None


def test_summary_and_html_show_slot_counts_and_unseen_values(slot_report):
    console = Console(file=io.StringIO(), width=200)
    print_summary(slot_report, console)
    printed = console.file.getvalue()
    assert "slots: 3 type(s), 5 span(s) in 4 example(s) (city 3, date 1, party_size 1)" \
        in printed
    assert "unseen slot values in test (informative): 60% of spans" in printed
    assert "Slot types seen only once" in printed and "test lines 4" in printed
    page = render_html(slot_report)
    assert "<h2 id='slots'>Spans per slot type</h2>" in page
    assert "<td>city</td><td>3</td><td>2</td>" in page
    assert "<h2 id='unseen_values'>" in page and "oslo, lima" in page


def test_cli_check_task_nlu_writes_the_slot_section(tmp_path, tiny_bert, capsys):
    dialogue = {"messages": [{"role": "user", "content": "pay $20 now", "intent": "pay",
                              "slots": [{"slot": "amount", "start": 4, "end": 7}]},
                             {"role": "assistant", "content": "Done."}]}
    path, out = jsonl(tmp_path / "d.jsonl", [dialogue]), tmp_path / "r.json"
    assert main(["data", "check", str(path), "--kind", "nlu", "--output", str(out),
                 "--model", tiny_bert]) == 0
    assert json.loads(out.read_text())["slots"]["counts"] == {"amount": 1}
    assert "slots: 1 type(s)" in capsys.readouterr().out


# --- data convert: the four NLU formats ----------------------------------------------------

ROUND_TRIP = [rec("fly to new york tomorrow", "book", ("city", "new york"), ("date", "tomorrow")),
              rec("pay $20 on LM-20458813 please", "pay_bill", ("amount", "$20"),
                  ("account_id", "LM-20458813")),
              rec("réserve à Zürich 🙂 demain", "book", ("city", "Zürich"),
                  ("date", "demain")),
              rec("hello there", "greet")]
SUFFIX = {"nlu-jsonl": ".jsonl", "rasa": ".yml", "conll": ".conll", "dialogue": ".jsonl"}


def triples(examples: list[NluExample]) -> list[tuple]:
    return [(e.text, e.intent, e.slots) for e in examples]


def as_set(examples: list[NluExample]) -> list[tuple]:
    """Rasa groups examples by intent, so order is not kept: compare sorted."""
    return sorted(triples(examples), key=repr)


@pytest.mark.parametrize("first", list(SUFFIX))
@pytest.mark.parametrize("second", list(SUFFIX))
def test_round_trip_through_every_pair_keeps_text_intent_and_spans(tmp_path, first, second):
    source = jsonl(tmp_path / "source.jsonl", ROUND_TRIP)
    expected = as_set(read_nlu_examples(source))
    a, b = tmp_path / f"a{SUFFIX[first]}", tmp_path / f"b{SUFFIX[second]}"
    assert convert_file(source, first, a) == (4, [])
    assert convert_file(a, second, b) == (4, [])
    assert as_set(read_nlu_examples(a)) == expected
    assert as_set(read_nlu_examples(b)) == expected


def test_written_formats_look_as_documented(tmp_path):
    source = jsonl(tmp_path / "s.jsonl", ROUND_TRIP[:2])
    convert_file(source, "rasa", tmp_path / "o.yml")
    convert_file(source, "conll", tmp_path / "o.conll")
    convert_file(source, "dialogue", tmp_path / "o.jsonl")
    assert "- intent: book\n  examples: |\n    - fly to [new york](city) [tomorrow](date)\n" \
        in (tmp_path / "o.yml").read_text()
    assert (tmp_path / "o.conll").read_text().startswith(
        "# intent: book\nfly\tO\nto\tO\nnew\tB-city\nyork\tI-city\ntomorrow\tB-date\n\n")
    turn = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[1])["messages"][0]
    assert turn["intent"] == "pay_bill" and turn["slots"][0] == {
        "slot": "amount", "start": 4, "end": 7, "value": "$20"}


def test_conll_splits_a_token_at_a_span_edge_and_says_the_text_changed(tmp_path):
    source = jsonl(tmp_path / "s.jsonl", [rec("top up $20  now", "pay", ("amount", "20"))])
    written, notes = convert_file(source, "conll", tmp_path / "o.conll")
    assert written == 1 and any("re-spaced" in n and "lines 1" in n for n in notes)
    [back] = read_nlu_examples(tmp_path / "o.conll")
    assert back.text == "top up $ 20 now" and back.value(back.slots[0]) == "20"


def test_rasa_skips_texts_its_markup_would_change_and_no_intent_only_goes_to_conll(tmp_path):
    source = jsonl(tmp_path / "s.jsonl", [rec("see [docs](here) now", "help"),
                                          rec("fly to paris", "book", ("city", "paris"))])
    written, notes = convert_file(source, "rasa", tmp_path / "o.yml")
    assert written == 1 and any("Rasa" in n and "lines 1" in n for n in notes)
    conll = write(tmp_path / "n.conll", "fly\tO\nto\tO\nparis\tB-city\n")
    written, notes = convert_file(conll, "nlu-jsonl", tmp_path / "n.jsonl")
    assert written == 0 and any("no intent" in n for n in notes)
    assert convert_file(conll, "conll", tmp_path / "n2.conll") == (1, [])


def test_intent_data_converts_to_nlu_targets_and_nlu_data_to_intents(tmp_path):
    csv = write(tmp_path / "i.csv", "text,label\nhi there,greet\nbye now,leave\n")
    assert convert_file(csv, "rasa", tmp_path / "i.yml") == (2, [])
    assert triples(read_nlu_examples(tmp_path / "i.yml")) == [
        ("hi there", "greet", ()), ("bye now", "leave", ())]
    conll = tmp_path / "r.conll"
    convert_file(jsonl(tmp_path / "s.jsonl", ROUND_TRIP[:1]), "conll", conll)
    written, notes = convert_file(conll, "csv", tmp_path / "o.csv")
    assert written == 1 and any("dropped slots" in n for n in notes)
    assert (tmp_path / "o.csv").read_text() == "text,label\nfly to new york tomorrow,book\n"


def test_dialogue_context_survives_dialogue_to_dialogue(tmp_path):
    dialogue = {"messages": [{"role": "assistant", "content": "Which account?"},
                             {"role": "user", "content": "In checking.", "intent": "pay",
                              "slots": [{"slot": "account", "start": 3, "end": 11}]}]}
    source = jsonl(tmp_path / "d.jsonl", [dialogue])
    assert convert_file(source, "dialogue", tmp_path / "o.jsonl") == (1, [])
    [back] = read_nlu_examples(tmp_path / "o.jsonl", context=True)
    assert back.context == "Which account?" and back.slots == (Span("account", 3, 11),)
    written, notes = convert_file(source, "nlu-jsonl", tmp_path / "o2.jsonl")
    assert written == 1 and any("context" in n for n in notes)


def test_convert_stops_on_a_bad_span_naming_its_line(tmp_path):
    source = jsonl(tmp_path / "s.jsonl", BAD_JSONL[:2])
    where = r"s.jsonl:2 \(field 'slots\[0\]'\): span 'city' 7:30 falls outside"
    with pytest.raises(DataError, match=where):
        convert_file(source, "conll", tmp_path / "o.conll")


def test_cli_convert_to_nlu_targets(tmp_path, capsys):
    source = jsonl(tmp_path / "s.jsonl", ROUND_TRIP)
    assert main(["data", "convert", str(source), "--to", "conll", "--output",
                 str(tmp_path / "o.conll")]) == 0
    assert "wrote 4 record(s)" in capsys.readouterr().out
    assert main(["data", "convert", str(source), "--to", "nope", "--output",
                 str(tmp_path / "o.x")]) == 2
    assert "nlu-jsonl, rasa, conll, dialogue" in capsys.readouterr().err


# --- PII redaction moves slot offsets -----------------------------------------------------

def test_redact_with_spans_covers_the_placeholder_and_shifts_later_spans():
    text = "call +44 20 7946 0958 or mail bob@example.com about Fiber 500"
    spans = [(30, 45), (52, 61), (30, 33)]  # the e-mail, the plan, part of the e-mail
    clean, moved, matches = redact_with_spans(text, spans)
    assert clean == "call [PHONE] or mail [EMAIL] about Fiber 500"
    assert [m.kind for m in matches] == ["phone", "email"]
    assert [clean[s:e] for s, e in moved] == ["[EMAIL]", "Fiber 500", "[EMAIL]"]
    assert redact_with_spans("no pii here", [(0, 2)]) == ("no pii here", [(0, 2)], [])


def test_fix_redacts_slot_values_and_moves_offsets_in_jsonl(tmp_path):
    records = [
        {**rec("send it to bob@example.com today", "share", ("email", "bob@example.com"),
               ("date", "today")), "id": 7},
        rec("call +44 20 7946 0958 about Fiber 500", "call", ("plan_name", "Fiber 500")),
    ]
    out = tmp_path / "o.jsonl"
    changes = fix_file(jsonl(tmp_path / "s.jsonl", records), out, FixOptions(redact_pii=True))
    assert changes["redacted"] == {"email": [1], "phone": [2]}
    first, second = [json.loads(line) for line in out.read_text().splitlines()]
    assert first["id"] == 7 and first["text"] == "send it to [EMAIL] today"
    assert [(s["start"], s["end"], s["value"]) for s in first["slots"]] == [
        (11, 18, "[EMAIL]"), (19, 24, "today")]
    assert second["slots"] == [{"slot": "plan_name", "start": 19, "end": 28,
                                "value": "Fiber 500"}]
    # the cleaned copy reads strictly: every value matches its offsets
    assert [e.value(s) for e in read_nlu_examples(out) for s in e.slots] == [
        "[EMAIL]", "today", "Fiber 500"]


def test_fix_redacts_dialogue_turn_slots(tmp_path):
    turn = rec("my number is +1 (415) 555-2671, plan Fiber 500", "x",
               ("plan_name", "Fiber 500"))
    dialogue = {"id": "d1", "messages": [
        {"role": "system", "content": "mail help@lumen.example.com"},
        {"role": "user", "content": turn["text"], "intent": "x", "slots": turn["slots"]},
        {"role": "assistant", "content": "Calling +1 (415) 555-2671 now."}]}
    out = tmp_path / "o.jsonl"
    changes = fix_file(jsonl(tmp_path / "d.jsonl", [dialogue]), out,
                       FixOptions(redact_pii=True))
    assert changes["redacted"] == {"phone": [1], "email": [1]}
    messages = json.loads(out.read_text())["messages"]
    assert messages[0]["content"] == "mail [EMAIL]"
    assert messages[1]["content"] == "my number is [PHONE], plan Fiber 500"
    assert messages[2]["content"] == "Calling [PHONE] now."
    [example] = read_nlu_examples(out)
    assert example.value(example.slots[0]) == "Fiber 500"


def test_fix_on_conll_says_how_to_clean_it(tmp_path):
    conll = write(tmp_path / "a.conll", "# intent: x\nmail\tO\nbob@example.com\tB-email\n")
    with pytest.raises(DataError, match="--to nlu-jsonl"):
        fix_file(conll, tmp_path / "b.conll", FixOptions(redact_pii=True))
