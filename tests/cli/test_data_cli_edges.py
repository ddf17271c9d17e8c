"""Issue 9, item 10 (CLI rough edges): outputs in missing folders, huge lines streamed and
refused, CSV formula injection, and a pretty-printed JSON object given as JSONL."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pytest

from dialogtune.cli import main
from dialogtune.data.quality.check import check_files
from dialogtune.data.formats import read, read_dialogues, read_intents
from dialogtune.errors import DataError, DialogtuneError


class FakeTokenizer:
    model_max_length = 10**30

    def __call__(self, texts, add_special_tokens=True, **_):
        return {"input_ids": [[0] * len(t.split()) for t in texts]}


def put(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


INTENTS = "text,label\nwhere is my card,card\nsend money,transfer\nblock my card,card\n"


def chat(user: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user},
                                    {"role": "assistant", "content": "ok"}]})


# --- 1. outputs: missing folders are created, a folder given for a file is refused -------

def test_check_writes_reports_into_missing_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative paths of the bug report
    put(tmp_path / "t.csv", INTENTS)
    assert main(["data", "check", "t.csv", "--output", "missing/dir/r.json",
                 "--html", "other/dir/r.html"]) == 0
    assert json.loads((tmp_path / "missing/dir/r.json").read_text())["records"] == 3
    assert "<h1>data check" in (tmp_path / "other/dir/r.html").read_text()


@pytest.mark.parametrize("verb", [
    ["convert", "IN", "--to", "jsonl", "--output", "OUT"],
    ["fix", "IN", "--output", "OUT"],
    ["sample", "IN", "--shots", "1", "--output", "OUT"],
    ["check", "IN", "--output", "OUT"],
    ["check", "IN", "--html", "OUT"],
])
def test_data_outputs_create_folders_and_refuse_a_folder(tmp_path, capsys, verb):
    source = put(tmp_path / "in.csv", INTENTS)
    target = tmp_path / "a" / "b" / "out.x"
    argv = ["data"] + [str(source) if a == "IN" else str(target) if a == "OUT" else a
                       for a in verb]
    assert main(argv) == 0 and target.is_file()
    folder = tmp_path / "folder"
    folder.mkdir()
    argv = [str(folder) if a == str(target) else a for a in argv]
    assert main(argv) == 2
    assert f"{folder}: is a folder; give a file name" in capsys.readouterr().err
    assert list(folder.iterdir()) == []  # no stray temporary file


def test_split_output_dir_is_created_and_a_file_refused(tmp_path, capsys):
    source = put(tmp_path / "in.csv", INTENTS)
    assert main(["data", "split", str(source), "--output-dir", str(tmp_path / "x/y")]) == 0
    assert (tmp_path / "x/y/train.csv").is_file()
    assert main(["data", "split", str(source), "--output-dir", str(source)]) == 2
    assert "is a file, expected a folder" in capsys.readouterr().err
    assert main(["data", "convert", str(source), "--to", "csv", "--output",
                 str(source / "sub.csv")]) == 2  # a parent that is a file
    assert "part of the path is a file" in capsys.readouterr().err


# --- 2. reading streams; a line over the limit is refused or reported --------------------

@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("DIALOGTUNE_MAX_LINE_CHARS", "1024")


LONG = "word " * 400  # 2000 characters, over the 1 KB test limit


def test_training_readers_refuse_a_line_over_the_limit(tmp_path, small_limit):
    jsonl = put(tmp_path / "d.jsonl", json.dumps({"text": "hi", "label": "a"}) + "\n" +
                json.dumps({"text": LONG, "label": "b"}) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl:2: line longer than 1,024 characters"):
        read_intents(jsonl)
    table = put(tmp_path / "d.csv", f"text,label\nhi,a\n{LONG},b\n")
    with pytest.raises(DataError, match=r"d\.csv:3: line longer than 1,024"):
        read_intents(table)
    dialogues = put(tmp_path / "c.jsonl", chat("hi") + "\n" + chat(LONG) + "\n")
    with pytest.raises(DataError, match=r"c\.jsonl:2: line longer"):
        read_dialogues(dialogues)


def test_check_reports_a_long_line_and_reads_on(tmp_path, small_limit):
    rows = [{"text": "hi", "label": "a"}, {"text": LONG, "label": "b"},
            {"text": "bye", "label": "b"}]
    jsonl = put(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = check_files(jsonl, tokenizer=FakeTokenizer())
    assert [(m["line"], m["message"][:16]) for m in report["malformed"]] == [
        (2, "line longer than")]
    assert report["records"] == 2 and report["label_counts"] == {"a": 1, "b": 1}
    table = put(tmp_path / "d.csv", f"text,label\nhi,a\n{LONG},b\n\"two\nlines\",c\nbye,b\n")
    loaded = read(table, strict=False)
    assert [m["line"] for m in loaded.malformed] == [3]
    assert [(u.text, u.line) for u in loaded.utterances] == [
        ("hi", 2), ("two\nlines", 4), ("bye", 6)]


def test_a_huge_line_is_never_held_in_memory(tmp_path, small_limit):
    """5 MB on one line, 1 KB limit: reading must stay far below the file's size."""
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"text": "x" * 5_000_000, "label": "a"}) + "\n" +
                    json.dumps({"text": "hi", "label": "a"}) + "\n")
    tracemalloc.start()
    try:
        loaded = read(path, strict=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [u.text for u in loaded.utterances] == ["hi"]
    assert peak < 1_000_000


def test_a_json_array_over_the_total_limit_is_refused(tmp_path, monkeypatch):
    path = put(tmp_path / "d.json", json.dumps([{"text": "hi", "label": "a"}] * 20))
    monkeypatch.setenv("DIALOGTUNE_MAX_JSON_BYTES", "100")
    for reader in (read_intents, lambda p: read(p, strict=False)):
        with pytest.raises(DataError, match=r"d\.json: file is over 100 bytes.*JSONL"):
            reader(path)
    monkeypatch.setenv("DIALOGTUNE_MAX_JSON_BYTES", "lots")
    with pytest.raises(DialogtuneError, match="DIALOGTUNE_MAX_JSON_BYTES must be a positive"):
        read(path, strict=False)


# --- 3. CSV formula injection ------------------------------------------------------------

DANGEROUS = ["=cmd|' /C calc'!A0", "+44 20 7946 0958", "-5 degrees", "@SUM(A1)",
             "'=already quoted", "'just an apostrophe", "plain text"]


def test_csv_cells_are_escaped_and_read_back_unchanged(tmp_path):
    rows = [{"text": text, "label": label} for text, label in
            zip(DANGEROUS, ["a", "=b", "a", "b", "a", "b", "a"])]
    first = put(tmp_path / "in.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "convert", str(first), "--to", "csv", "--output",
                 str(tmp_path / "one.csv")]) == 0
    with open(tmp_path / "one.csv", newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'=cmd|' /C calc'!A0" in cells and "'-5 degrees" in cells and "'=b" in cells
    assert "''=already quoted" in cells and "'just an apostrophe" in cells
    for step, (src, to, out) in enumerate([("one.csv", "jsonl", "two.jsonl"),
                                           ("two.jsonl", "csv", "three.csv"),
                                           ("three.csv", "jsonl", "four.jsonl")]):
        assert main(["data", "convert", str(tmp_path / src), "--to", to, "--output",
                     str(tmp_path / out)]) == 0, step
    back = [json.loads(line) for line in (tmp_path / "four.jsonl").read_text().splitlines()]
    assert back == rows
    assert (tmp_path / "three.csv").read_text() == (tmp_path / "one.csv").read_text()
    assert [r.text for r in read_intents(tmp_path / "three.csv")] == DANGEROUS


def test_fix_split_and_sample_escape_their_csv_output(tmp_path):
    source = put(tmp_path / "in.csv", "text,label,id\n=1+1,a,-1\nhello,a,2\n@x,b,3\nbye,b,4\n")
    escaped = "text,label,id\n'=1+1,a,'-1\nhello,a,2\n'@x,b,3\nbye,b,4\n"
    assert main(["data", "fix", str(source), "--output", str(tmp_path / "fixed.csv")]) == 0
    assert (tmp_path / "fixed.csv").read_text() == escaped
    assert [r.text for r in read_intents(tmp_path / "fixed.csv")] == ["=1+1", "hello", "@x", "bye"]
    assert main(["data", "sample", str(source), "--shots", "2", "--output",
                 str(tmp_path / "k.csv")]) == 0
    assert (tmp_path / "k.csv").read_text() == escaped
    assert main(["data", "split", str(source), "--output-dir", str(tmp_path / "s")]) == 0
    written = (tmp_path / "s/train.csv").read_text() + (tmp_path / "s/test.csv").read_text()
    assert "'=1+1,a,'-1" in written and "'@x,b,3" in written


def test_escape_rules():
    from dialogtune.data.files import escape_cell, unescape_cell

    for text in DANGEROUS + ["\tx", "\rx", "''-x", "'", "", "-"]:
        assert unescape_cell(escape_cell(text)) == text
    assert escape_cell("\tx") == "'\tx" and escape_cell("a=b") == "a=b"
    assert escape_cell(5) == 5  # not text: left alone


# --- 4. a pretty-printed JSON object or array where JSONL is expected --------------------

PRETTY = '{\n  "text": "hi",\n  "label": "x"\n}\n'
SPREAD = "a JSON object spread over several lines; JSONL needs one object per line"


@pytest.mark.parametrize("name, content, message", [
    ("d.jsonl", PRETTY, SPREAD),
    ("d.json", PRETTY, SPREAD),
    ("d.jsonl", "\n" + PRETTY + PRETTY, SPREAD),  # several, concatenated: line 2
    ("d.jsonl", '[\n  {"text": "hi", "label": "x"}\n]\n', "a JSON array spread over"),
])
def test_pretty_printed_json_is_one_clear_line(tmp_path, capsys, name, content, message):
    path = put(tmp_path / name, content)
    line = 2 if content.startswith("\n") else 1
    expected = f"{path}:{line}: {message}"
    for argv in (["data", "check", str(path)],
                 ["train", "--task", "intent", "--data", str(path), "--output",
                  str(tmp_path / "run")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    with pytest.raises(DataError, match=message):
        read_dialogues(path)


def test_a_really_broken_first_line_is_still_malformed_json(tmp_path):
    path = put(tmp_path / "d.jsonl", '{"text": "hi",, "label": "x"}\n{"text": "a", '
                                     '"label": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:1: malformed JSON"):
        read_intents(path)
    assert [m["line"] for m in read(path, strict=False).malformed] == [1]
