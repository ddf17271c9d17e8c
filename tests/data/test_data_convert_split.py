"""`dialogtune data convert / split / sample`: round trips, Rasa import, lossy notes,
stratified and grouped splits, K-shot samples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dialogtune.cli import main
from dialogtune.data.formats.dialogue import dialogue_to_chat_json
from dialogtune.data.transform.convert import convert_file, read_for_conversion
from dialogtune.data.formats import read_dialogues, read_intents
from dialogtune.data.formats.rasa import strip_entities
from dialogtune.data.transform.split import sample_file, split_file
from dialogtune.errors import DataError


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def jsonl(path: Path, objects) -> Path:
    return write(path, "".join(json.dumps(o) + "\n" for o in objects))


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pairs(records):
    return [(r.text, r.label) for r in records]


INTENTS = 'text,category\nlost card,card\n"my card, it is gone",card\nbalance?,balance\n'
CHATS = [
    {"id": "d1", "domain": "bank", "messages": [
        {"role": "system", "content": "You are a bank."},
        {"role": "user", "content": "hi", "intent": "greet", "slots": []},
        {"role": "assistant", "content": "hello", "weight": 0},
        {"role": "user", "content": "my balance?"},
        {"role": "assistant", "content": "It is 10 €.", "weight": 1}]},
    {"id": "d2", "messages": [{"role": "user", "content": "bye"},
                              {"role": "assistant", "content": "bye!"}]},
]
PLAIN = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                       {"role": "user", "content": "c"},
                       {"role": "assistant", "content": "d", "weight": 0}]},
         {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"},
                       {"role": "assistant", "content": "y"}]}]
ALPACA = [{"instruction": "Say hi", "input": "", "output": "hi"},
          {"instruction": "Add", "input": "", "output": "4", "system": "math",
           "history": [["1+1?", "2"], ["2+1?", "3"]], "id": 7}]


def chain(tmp_path, source: Path, *formats) -> Path:
    current = source
    for i, fmt in enumerate(formats):
        target = tmp_path / f"step{i}.{'csv' if fmt == 'csv' else 'jsonl'}"
        convert_file(current, fmt, target)
        current = target
    return current


def test_csv_to_jsonl_to_csv_keeps_records(tmp_path):
    source = write(tmp_path / "in.csv", INTENTS)
    back = chain(tmp_path, source, "jsonl", "csv")
    assert pairs(read_intents(back, require_labels=1)) == pairs(read_intents(source))
    assert read_jsonl(tmp_path / "step0.jsonl")[1] == {"text": "my card, it is gone",
                                                       "label": "card"}


def test_chat_to_sharegpt_to_chat_is_identical(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", CHATS)
    sharegpt = read_jsonl(chain(tmp_path, source, "sharegpt"))
    assert sharegpt[0]["conversations"][1] == {"intent": "greet", "slots": [], "from": "human",
                                               "value": "hi"}
    back = chain(tmp_path, source, "sharegpt", "chat")
    assert read_jsonl(back) == CHATS
    assert [dialogue_to_chat_json(d) for d in read_for_conversion(back).dialogues] == CHATS


def test_chat_to_openai_to_chat(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", PLAIN)
    assert read_jsonl(chain(tmp_path, source, "openai", "chat")) == PLAIN
    written, notes = convert_file(jsonl(tmp_path / "rich.jsonl", CHATS), "openai",
                                  tmp_path / "o.jsonl")
    assert written == 2
    assert any("dropped dialogue field(s) id, domain" in n and "lines 1" in n for n in notes)
    assert any("dropped turn field(s) intent, slots" in n for n in notes)
    out = read_jsonl(tmp_path / "o.jsonl")
    assert set(out[0]) == {"messages"}
    assert all(set(m) <= {"role", "content", "weight"} for m in out[0]["messages"])
    assert [m["content"] for m in out[0]["messages"]] == [
        m["content"] for m in CHATS[0]["messages"]]


def test_openai_skips_dialogues_without_an_assistant_turn(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [PLAIN[0], {"messages": [
        {"role": "user", "content": "hello?"}]}])
    written, notes = convert_file(source, "openai", tmp_path / "o.jsonl")
    assert written == 1 and any("no assistant turn" in n and "lines 2" in n for n in notes)


def test_alpaca_to_chat_to_alpaca_is_identical(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", ALPACA)
    chat = read_jsonl(chain(tmp_path, source, "chat"))
    assert [m["role"] for m in chat[1]["messages"]] == [
        "system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert read_jsonl(chain(tmp_path, source, "chat", "alpaca")) == ALPACA


def test_multi_turn_chat_to_alpaca_keeps_pairs_in_history(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", PLAIN)
    alpaca = read_jsonl(chain(tmp_path, source, "alpaca"))
    assert alpaca[0] == {"instruction": "c", "input": "", "output": "d",
                         "history": [["a", "b"]]}
    back = read_jsonl(chain(tmp_path, source, "alpaca", "chat"))
    assert [[(m["role"], m["content"]) for m in d["messages"]] for d in back] == [
        [(m["role"], m["content"]) for m in d["messages"]] for d in PLAIN]


def test_alpaca_input_is_merged_into_the_instruction_as_the_trainer_reads_it(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [{"instruction": "Sum", "input": "1 2", "output": "3"}])
    back = chain(tmp_path, source, "chat", "alpaca")
    assert read_jsonl(back) == [{"instruction": "Sum\n\n1 2", "input": "", "output": "3"}]
    assert [dialogue_to_chat_json(d) for d in read_dialogues(back)] == [
        dialogue_to_chat_json(d) for d in read_dialogues(source)]


def test_lossy_alpaca_conversion_says_what_it_drops(tmp_path):
    odd = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                        {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}]}
    source = jsonl(tmp_path / "in.jsonl", [odd, {"messages": [{"role": "user", "content": "x"}]}])
    written, notes = convert_file(source, "alpaca", tmp_path / "a.jsonl")
    text = "\n".join(notes)
    assert written == 1
    assert "turns after the last assistant reply: 1 record(s) (lines 1)" in text
    assert "not user/assistant pairs" in text and "no user → assistant exchange" in text


def test_sharegpt_input_reads_system_field_and_roles(tmp_path):
    source = jsonl(tmp_path / "in.jsonl", [{"system": "be brief", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}]}])
    assert read_jsonl(chain(tmp_path, source, "chat")) == [{"messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"}]}]


@pytest.mark.parametrize("source_text, suffix, to, message", [
    (INTENTS, ".csv", "chat", "no assistant replies"),
    (json.dumps(PLAIN[0]) + "\n", ".jsonl", "csv", "no intent labels"),
    (INTENTS, ".csv", "yaml", "unknown target format"),
])
def test_meaningless_conversions_are_clear_errors(tmp_path, source_text, suffix, to, message):
    source = write(tmp_path / f"in{suffix}", source_text)
    with pytest.raises(DataError, match=message):
        convert_file(source, to, tmp_path / "out.jsonl")


def test_convert_stops_at_the_first_unreadable_row(tmp_path):
    source = write(tmp_path / "in.csv", "text,label\nok,a\n,b\n")
    with pytest.raises(DataError, match=r"in.csv:3.*empty text"):
        convert_file(source, "jsonl", tmp_path / "out.jsonl")


RASA = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hey
    - good [morning](part_of_day)
- synonym: savings
  examples: |
    - pink pig
- intent: book_flight
  examples: |
    - fly to [Paris]{"entity": "city"} from [Rome](city:RM)
    - one ticket
"""


def test_rasa_import_strips_entities_and_keeps_lines(tmp_path):
    records = read_intents(write(tmp_path / "nlu.yml", RASA))
    assert [(r.text, r.label, r.line) for r in records] == [
        ("hey", "greet", 5), ("good morning", "greet", 6),
        ("fly to Paris from Rome", "book_flight", 12), ("one ticket", "book_flight", 13)]
    assert strip_entities("[a b](x) and [c]{\"entity\": \"y\"}") == "a b and c"


def test_rasa_to_csv_and_errors(tmp_path):
    out = tmp_path / "nlu.csv"
    convert_file(write(tmp_path / "nlu.yml", RASA), "csv", out)
    assert pairs(read_intents(out))[2] == ("fly to Paris from Rome", "book_flight")
    with pytest.raises(DataError, match="expected a top-level 'nlu:'"):
        read_intents(write(tmp_path / "x.yml", "stories: []\n"))
    with pytest.raises(DataError, match=r"bad.yml:\d+: malformed YAML"):
        read_intents(write(tmp_path / "bad.yml", "nlu:\n- intent: [\n"))


# --- split and sample --------------------------------------------------------------------


def labelled_csv(path: Path, counts: dict[str, int]) -> Path:
    rows = [f"{label} example {i},{label},{label}-{i}\n" for label, n in counts.items()
            for i in range(n)]
    return write(path, "text,intent,id\n" + "".join(rows))


def test_split_is_stratified_seeded_and_keeps_the_format(tmp_path):
    source = labelled_csv(tmp_path / "all.csv", {"a": 20, "b": 10, "c": 2, "d": 1})
    result = split_file(source, 0.2, 42, tmp_path / "out")
    train = read_intents(tmp_path / "out" / "train.csv", require_labels=1)
    test = read_intents(tmp_path / "out" / "test.csv", require_labels=1)
    assert (tmp_path / "out" / "test.csv").read_text().startswith("text,intent,id\n")
    assert Counter(r.label for r in test) == {"a": 4, "b": 2, "c": 1}
    assert result["train"] + result["test"] == 33 == len(train) + len(test)
    assert not {r.text for r in train} & {r.text for r in test}
    split_file(source, 0.2, 42, tmp_path / "again")
    assert (tmp_path / "again" / "test.csv").read_text() == \
        (tmp_path / "out" / "test.csv").read_text()
    split_file(source, 0.2, 7, tmp_path / "other")
    assert (tmp_path / "other" / "test.csv").read_text() != \
        (tmp_path / "out" / "test.csv").read_text()


def test_dialogue_split_keeps_each_conversation_on_one_side(tmp_path):
    records = [{"conversation_id": f"c{i // 3}", "messages": [
        {"role": "user", "content": f"turn {i}"}, {"role": "assistant", "content": "ok"}]}
        for i in range(30)]
    source = jsonl(tmp_path / "d.jsonl", records)
    result = split_file(source, 0.3, 1, tmp_path / "out")
    train = {r["conversation_id"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")}
    test = {r["conversation_id"] for r in read_jsonl(tmp_path / "out" / "test.jsonl")}
    assert not train & test and len(train | test) == 10
    assert result["test"] == 9 and result["train"] == 21


def test_split_rejects_bad_fraction(tmp_path):
    source = labelled_csv(tmp_path / "all.csv", {"a": 3, "b": 3})
    with pytest.raises(DataError, match="between 0 and 1"):
        split_file(source, 1.5, 1, tmp_path / "out")


def test_sample_takes_k_per_intent_with_a_seed(tmp_path):
    source = labelled_csv(tmp_path / "all.csv", {"a": 20, "b": 10, "c": 2})
    out = tmp_path / "k.csv"
    result = sample_file(source, 5, 3, out)
    assert Counter(r.label for r in read_intents(out)) == {"a": 5, "b": 5, "c": 2}
    assert result["short_labels"] == ["c"]
    first = out.read_text()
    sample_file(source, 5, 3, out)
    assert out.read_text() == first
    with pytest.raises(DataError, match="needs intent data"):
        sample_file(jsonl(tmp_path / "d.jsonl", PLAIN), 1, 0, tmp_path / "k.jsonl")


def test_cli_convert_split_sample(tmp_path, capsys):
    source = jsonl(tmp_path / "in.jsonl", CHATS)
    assert main(["data", "convert", str(source), "--to", "openai", "--output",
                 str(tmp_path / "o.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "note: dropped dialogue field(s)" in out and "wrote 2 record(s)" in out
    intents = labelled_csv(tmp_path / "all.csv", {"a": 10, "b": 10})
    assert main(["data", "split", str(intents), "--test", "0.2", "--output-dir",
                 str(tmp_path / "s")]) == 0
    assert main(["data", "sample", str(intents), "--shots", "3", "--output",
                 str(tmp_path / "k.csv")]) == 0
    assert "wrote 6 record(s), 2 intent(s)" in capsys.readouterr().out
    assert main(["data", "convert", str(intents), "--to", "csv", "--output",
                 str(intents)]) == 2
    assert "output is the input" in capsys.readouterr().err
