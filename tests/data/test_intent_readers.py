"""Intent data readers: CSV, JSONL and saved HF datasets, their validation errors, splits."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogtune.data.formats import read_intents
from dialogtune.data.quality.checks import rare_label_warnings
from dialogtune.data.transform.split import stratified_split
from dialogtune.data.records import Utterance
from dialogtune.errors import DataError


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def pairs(records):
    return [(r.text, r.label) for r in records]


# --- CSV ---------------------------------------------------------------------------------


def test_csv_text_label_with_lines_and_source(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nlost card,card\n  check balance ,balance\n")
    records = read_intents(path)
    assert pairs(records) == [("lost card", "card"), ("check balance", "balance")]
    assert [r.line for r in records] == [2, 3]
    assert all(r.source == str(path) for r in records)


@pytest.mark.parametrize("label_header", ["category", "intent"])
def test_csv_accepts_category_and_intent_columns(tmp_path, label_header):
    path = write(tmp_path / "d.csv", f"{label_header},text\ncard,lost card\nbalance,my balance\n")
    assert pairs(read_intents(path)) == [("lost card", "card"), ("my balance", "balance")]


def test_csv_column_overrides(tmp_path):
    path = write(tmp_path / "d.csv",
                 "id,utt,text,cls,label\n"
                 "1,lost card,IGNORED,card,x\n2,my balance,IGNORED,balance,x\n")
    records = read_intents(path, text_column="utt", label_column="cls")
    assert pairs(records) == [("lost card", "card"), ("my balance", "balance")]


def test_csv_bom_crlf_quoted_multiline_and_blank_lines(tmp_path):
    text = ('\ufefftext,label\r\n"a ""quoted"", text",card\r\n\r\n'
            '"two\nlines",balance\r\nlast one,card\r\n')
    records = read_intents(write(tmp_path / "d.csv", text))
    assert pairs(records) == [('a "quoted", text', "card"), ("two\nlines", "balance"),
                              ("last one", "card")]
    # line numbers are where each row starts, counting the blank and the embedded newline
    assert [r.line for r in records] == [2, 4, 6]


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path / "d.csv", "utterance_text,tag\nlost card,card\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    message = str(info.value)
    assert message.startswith(f"{path}:1")
    assert "utterance_text" in message and "tag" in message and "--text-column" in message


def test_missing_override_column_names_field_and_columns(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nlost card,card\nbalance,balance\n")
    with pytest.raises(DataError) as info:
        read_intents(path, label_column="cls")
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 1, "cls")
    assert str(err).startswith(f"{path}:1 (field 'cls'): ")
    assert "'text', 'label'" in str(err)


def test_malformed_row_wrong_field_count(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nlost card,card\nhello,there,extra\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")
    assert "3 fields" in str(info.value) and "header has 2" in str(info.value)


def test_empty_text_names_line_and_field(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nlost card,card\n   ,balance\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(info.value) == f"{path}:3 (field 'text'): empty text"


def test_empty_label_names_line_and_field(tmp_path):
    path = write(tmp_path / "d.csv", "text,category\nlost card,card\nmy balance,\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(info.value) == f"{path}:3 (field 'category'): empty label"


def test_non_utf8_reports_line_of_bad_byte(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\nlost card,card\ncaf\xe9 open,balance\nok,card\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: not valid UTF-8 (byte 0xe9)")


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="empty file"):
        read_intents(write(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match="no examples found"):
        read_intents(write(tmp_path / "header.csv", "text,label\n"))


def test_fewer_than_two_labels(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\nlost card,card\nblock card,card\n")
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(path) in str(info.value) and "1 distinct label" in str(info.value)
    assert len(read_intents(path, require_labels=1)) == 2  # evaluation data may have one


# --- JSONL -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["label", "intent"])
def test_jsonl_label_or_intent(tmp_path, key):
    lines = [{"text": "lost card", key: "card"}, {"text": "balance", key: "balance", "x": 1}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    records = read_intents(path)
    assert pairs(records) == [("lost card", "card"), ("balance", "balance")]
    assert [r.line for r in records] == [1, 2]


def test_jsonl_integer_labels_become_strings(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    assert [r.label for r in read_intents(path)] == ["0", "1"]


def test_jsonl_unicode_line_separators_inside_strings(tmp_path):
    """JSON allows raw U+2028/U+0085 in strings; only '\\n' separates JSONL records."""
    lines = [{"text": "lost\u2028card", "label": "card"},
             {"text": "bal\x85ance", "label": "balance"},
             {"text": "third", "label": "card"}]
    path = write(tmp_path / "d.jsonl",
                 "\r\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\r\n")
    records = read_intents(path)
    assert pairs(records) == [("lost\u2028card", "card"), ("bal\x85ance", "balance"),
                              ("third", "card")]
    assert [r.line for r in records] == [1, 2, 3]


def test_jsonl_malformed_line(tmp_path):
    path = write(tmp_path / "d.jsonl",
                 '{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: malformed JSON")


def test_jsonl_non_object_and_wrong_types(tmp_path):
    with pytest.raises(DataError, match=r":2: expected a JSON object"):
        read_intents(write(tmp_path / "a.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n'))
    path = write(tmp_path / "b.jsonl", '{"text": "a", "label": "x"}\n{"text": 5, "label": "y"}\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert (info.value.line, info.value.field) == (2, "text")
    path = write(tmp_path / "c.jsonl",
                 '{"text": "a", "label": "x"}\n{"text": "b", "label": true}\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert (info.value.line, info.value.field) == (2, "label")


def test_jsonl_missing_label_names_line_and_keys(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "tag": "y"}\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(info.value).startswith(f"{path}:2: no label column")
    assert "'tag'" in str(info.value)


def test_jsonl_empty_text(tmp_path):
    path = write(tmp_path / "d.jsonl",
                 '{"text": "a", "intent": "x"}\n{"text": "", "intent": "y"}\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert str(info.value) == f"{path}:2 (field 'text'): empty text"


def test_jsonl_non_utf8(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
                     b'{"text": "\xff", "label": "y"}\n')
    with pytest.raises(DataError) as info:
        read_intents(path)
    assert info.value.line == 3 and str(path) in str(info.value)


# --- saved Hugging Face datasets ----------------------------------------------------------


def test_hf_dataset_folder(tmp_path):
    import datasets

    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"sentence": ["lost card", "balance"],
                                "intent": ["card", "balance"]}).save_to_disk(str(folder))
    records = read_intents(folder)
    assert pairs(records) == [("lost card", "card"), ("balance", "balance")]
    assert [r.line for r in records] == [1, 2]


def test_hf_dataset_class_label_names(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["card", "balance", "x"])})
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"text": ["lost card", "my balance", "block it"],
                                "label": [0, 1, 0]}, features=features).save_to_disk(str(folder))
    assert pairs(read_intents(folder)) == [("lost card", "card"), ("my balance", "balance"),
                                           ("block it", "card")]


def test_hf_dataset_class_label_minus_one_is_refused(tmp_path):
    """ClassLabel's -1 ("no label") was read as names[-1], the last intent."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["card", "balance", "x"])})
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"text": ["lost card", "my balance", "no idea"],
                                "label": [0, 1, -1]}, features=features).save_to_disk(str(folder))
    with pytest.raises(DataError) as info:
        read_intents(folder)
    message = str(info.value)
    assert message.startswith(f"{folder}:3 (field 'label'): label -1 at row index 2 means "
                              "'no label'")
    assert "\n" not in message and info.value.field == "label"


def test_hf_dataset_dict_uses_train_split(tmp_path):
    import datasets

    folder = tmp_path / "dd"
    datasets.DatasetDict({
        "test": datasets.Dataset.from_dict({"text": ["t1", "t2"], "label": ["p", "q"]}),
        "train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["card", "balance"]}),
    }).save_to_disk(str(folder))
    assert pairs(read_intents(folder)) == [("a", "card"), ("b", "balance")]


def test_hf_dataset_errors(tmp_path):
    import datasets

    folder = tmp_path / "ds"
    datasets.Dataset.from_dict({"text": ["a", " "], "label": ["card", "balance"]}
                               ).save_to_disk(str(folder))
    with pytest.raises(DataError) as info:
        read_intents(folder)
    assert str(info.value) == f"{folder}:2 (field 'text'): empty text"
    with pytest.raises(DataError) as info:
        read_intents(folder, text_column="utterance")
    assert str(folder) in str(info.value) and "['text', 'label']" in str(info.value)
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a saved Hugging Face dataset"):
        read_intents(tmp_path / "plain")


# --- warnings and splits -------------------------------------------------------------------


def test_rare_label_warnings():
    records = [Utterance(f"t{i}", "big") for i in range(5)]
    records += [Utterance(f"s{i}", "small") for i in range(4)] + [Utterance("o", "one")]
    warnings = rare_label_warnings(records, 5)
    assert warnings == ["intent 'one' has only 1 example(s) (fewer than 5)",
                        "intent 'small' has only 4 example(s) (fewer than 5)"]
    assert rare_label_warnings(records, 1) == []


def make_records(counts: dict[str, int]) -> list[Utterance]:
    return [Utterance(f"{label} {i}", label, i) for label, n in counts.items() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(counts=st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 30), min_size=1),
       fraction=st.floats(0.05, 0.5), seed=st.integers(0, 1000))
def test_stratified_split_properties(counts, fraction, seed):
    records = make_records(counts)
    train, held = stratified_split(records, fraction, seed)
    assert stratified_split(records, fraction, seed) == (train, held)  # deterministic
    assert not set(train) & set(held)
    assert Counter(train + held) == Counter(records)
    held_counts = Counter(r.label for r in held)
    for label, n in counts.items():
        if n >= 2:
            assert held_counts[label] >= 1
            assert held_counts[label] < n  # never the whole label
        else:
            assert held_counts[label] == 0


def test_stratified_split_fraction_and_seed():
    records = make_records({"a": 20, "b": 10, "c": 1})
    train, held = stratified_split(records, 0.1, seed=1)
    assert Counter(r.label for r in held) == {"a": 2, "b": 1}
    assert len(train) == 28
    other = stratified_split(records, 0.1, seed=2)[1]
    assert set(held) != set(other)  # the seed matters


def test_stratified_split_fraction_zero_holds_out_nothing():
    records = make_records({"a": 20, "b": 10, "c": 1})
    train, held = stratified_split(records, 0.0, seed=1)
    assert held == [] and Counter(train) == Counter(records)
