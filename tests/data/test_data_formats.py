"""One reader per format, strict and lenient by the same code: for every format, a file
with several bad rows read strictly raises exactly the first problem that lenient reading
lists, and lenient reading lists all of them at their file lines. And one stratified
splitter: training's validation split holds out what ``data split`` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogtune.data.formats import read, read_dialogues, read_documents, read_intents
from dialogtune.data.transform.split import split_file, stratified_split
from dialogtune.errors import DataError
from helpers import SRC


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def intent_csv(tmp: Path) -> Path:
    return write(tmp / "i.csv", "text,label\nhi,greet\nbad,row,here\nbye,bye\nok,\n"
                                "\"open,a\n")


def intent_jsonl(tmp: Path) -> Path:
    return write(tmp / "i.jsonl", '{"text": "hi", "label": "a"}\n{"text": \n'
                                  '{"text": "yo", "label": "b"}\n[1, 2]\n{"text": 5, "label": "a"}\n')


def intent_json_array(tmp: Path) -> Path:
    return write(tmp / "i.json", '[\n  {"text": "hi", "label": "a"},\n  {"text": "x"},\n'
                                 '  {"text": "yo", "label": "b"},\n  "just text"\n]\n')


def rasa_yaml(tmp: Path) -> Path:
    return write(tmp / "nlu.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n"
                                  "- intent: empty\n- intent: bye\n  examples: |\n    - bye\n"
                                  "- intent: also_empty\n")


def chat_jsonl(tmp: Path) -> Path:
    ok = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    bad_role = {"messages": [{"role": "robot", "content": "hi"}]}
    return write(tmp / "c.jsonl", "\n".join([json.dumps(ok), json.dumps(bad_role), "{oops",
                                             json.dumps(ok), json.dumps({"messages": []})]) + "\n")


def sharegpt_json(tmp: Path) -> Path:
    ok = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}
    bad = {"conversations": [{"from": "alien", "value": "hi"}]}
    return write(tmp / "s.json", "[\n" + ",\n".join(json.dumps(x) for x in (ok, bad, ok, 7)) + "\n]\n")


def alpaca_jsonl(tmp: Path) -> Path:
    rows = [{"instruction": "add", "output": "2"}, {"instruction": 3, "output": "x"},
            {"instruction": "sub", "output": "1"}, {"instruction": "mul", "output": None}]
    return write(tmp / "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def documents(tmp: Path) -> Path:
    folder = tmp / "docs"
    folder.mkdir()
    write(folder / "a.txt", "  \n")
    write(folder / "b.md", "# fine\n")
    (folder / "c.txt").write_bytes(b"ok\nbad \xff byte\n")
    return folder


def hf_dataset(tmp: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["a", "b"])})
    data = datasets.Dataset.from_dict({"text": ["hi", "x", "yo", "y"], "label": [0, -1, 1, -1]},
                                      features=features)
    data.save_to_disk(str(tmp / "hf"))
    return tmp / "hf"


# (build, kind, records read, [(line, start of message)] of the problems, in file order)
CASES = {
    "intent_csv": (intent_csv, "intent", 2, [(3, "malformed row: 3 fields"), (5, "empty label"),
                                              (6, "malformed row: 1 fields")]),
    "intent_jsonl": (intent_jsonl, "intent", 2, [(2, "malformed JSON"),
                                                  (4, "expected a JSON object per line"),
                                                  (5, "expected a string, got int")]),
    "intent_json_array": (intent_json_array, "intent", 2, [(3, "no label column"),
                                                            (5, "expected a JSON object")]),
    "rasa": (rasa_yaml, "intent", 2, [(5, "intent 'empty' has no examples"),
                                       (9, "intent 'also_empty' has no examples")]),
    "chat": (chat_jsonl, "dialogue", 2, [(2, "role must be one of"), (3, "malformed JSON"),
                                          (5, "'messages' must be a non-empty list")]),
    "sharegpt": (sharegpt_json, "dialogue", 2, [(3, "unknown speaker 'alien'"),
                                                 (5, "expected a JSON object")]),
    "alpaca": (alpaca_jsonl, "dialogue", 2, [(2, "expected a string, got int"),
                                              (4, "expected a string, got NoneType")]),
    "documents": (documents, "documents", 1, [(1, "document is empty"),
                                               (2, "not valid UTF-8 (byte 0xff)")]),
    "hf_dataset": (hf_dataset, "intent", 2, [(2, "label -1 at row index 1 means 'no label'"),
                                              (4, "label -1 at row index 3 means 'no label'")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_strict_raises_the_first_problem_lenient_lists_them_all(tmp_path, name):
    build, kind, count, expected = CASES[name]
    path = build(tmp_path)
    loaded = read(path, kind, strict=False)
    assert len(loaded.records) == count
    found = [(p.line, p.message) for p in loaded.problems]
    assert [(line, message[:len(start)]) for (line, message), (_, start)
            in zip(found, expected)] == expected and len(found) == len(expected)
    assert loaded.malformed == [p.as_dict() for p in loaded.problems]  # data check's JSON
    with pytest.raises(DataError) as strict:
        read(path, kind, strict=True)
    assert str(strict.value) == str(loaded.problems[0].error())
    training_reader = {"intent": read_intents, "dialogue": read_dialogues,
                       "documents": read_documents}[kind]
    with pytest.raises(DataError) as training:
        training_reader(path)
    assert str(training.value) == str(strict.value)


def test_detection_without_a_kind_gives_the_same_problems(tmp_path):
    for name in ("intent_csv", "intent_jsonl", "rasa", "chat", "sharegpt", "alpaca"):
        build, kind, _, expected = CASES[name]
        loaded = read(build(tmp_path), strict=False)
        assert loaded.kind == kind
        assert [p.line for p in loaded.problems] == [line for line, _ in expected]


def test_an_empty_text_is_a_training_error_but_a_check_finding(tmp_path):
    path = write(tmp_path / "e.csv", "text,label\nhi,a\n  ,b\nyo,b\n")
    loaded = read(path, strict=False)
    assert loaded.problems == [] and [r.text for r in loaded.utterances] == ["hi", "", "yo"]
    with pytest.raises(DataError, match=r"e\.csv:3 \(field 'text'\): empty text"):
        read_intents(path)


@pytest.mark.parametrize("fraction,seed", [(0.2, 0), (0.3, 7), (0.5, 42)])
def test_training_and_data_split_hold_out_the_same_records(tmp_path, fraction, seed):
    rows = [(f"utterance {label} {i}", label) for label, n in (("a", 9), ("b", 5), ("c", 2),
                                                                 ("d", 1)) for i in range(n)]
    source = write(tmp_path / "all.csv", "text,label\n" + "".join(f"{t},{l}\n" for t, l in rows))
    split_file(source, fraction, seed, tmp_path / "out")
    written = {(r.text, r.label) for r in read_intents(tmp_path / "out" / "test.csv",
                                                       require_labels=1)}
    train, held = stratified_split(read_intents(source), fraction, seed)
    assert {(r.text, r.label) for r in held} == written
    assert len(train) + len(held) == len(rows)


def test_there_is_one_stratified_splitter():
    from dialogtune.tasks import intent

    assert intent.stratified_split is stratified_split
    source = SRC
    shufflers = [p for p in source.rglob("*.py") if "def stratified" in p.read_text()]
    assert [p.name for p in shufflers] == ["split.py"]
