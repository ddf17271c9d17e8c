"""Bad input to ``data convert`` / ``data check --kind`` and the NLU settings: one clear line,
naming file, line and field, and exit code 2."""

from __future__ import annotations


from helpers import write_jsonl

from dialogtune.cli import main


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_convert_refuses_an_unreadable_row_with_its_line(tmp_path, capsys):
    data = tmp_path / "intents.jsonl"
    data.write_text('{"text": "hi", "label": "greet"}\n{"text": \n')
    assert main(["data", "convert", str(data), "--to", "csv",
                 "--output", str(tmp_path / "out.csv")]) == 2
    err = error_line(capsys)
    assert f"{data}:2" in err and "data fix drops unreadable rows" in err
    assert not (tmp_path / "out.csv").exists()


def test_convert_refuses_an_empty_text(tmp_path, capsys):
    data = tmp_path / "intents.csv"
    data.write_text("text,label\nhello,greet\n  ,greet\n")
    assert main(["data", "convert", str(data), "--to", "jsonl",
                 "--output", str(tmp_path / "out.jsonl")]) == 2
    err = error_line(capsys)
    assert f"{data}:3" in err and "empty text" in err and "text" in err


def test_nlu_convert_refuses_a_span_that_cuts_a_word(tmp_path, capsys):
    data = write_jsonl(tmp_path / "nlu.jsonl", [
        {"text": "send money", "intent": "transfer", "slots": [{"slot": "x", "start": 0,
                                                                "end": 2}]}])
    assert main(["data", "convert", str(data), "--to", "conll",
                 "--output", str(tmp_path / "out.conll")]) == 2
    err = error_line(capsys)
    assert f"{data}:1" in err and "slots[0]" in err and "data check lists every problem" in err


def test_check_refuses_an_unknown_data_kind(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "hi", "intent": "greet"}])
    assert main(["data", "check", str(data), "--kind", "tabular"]) == 2
    err = error_line(capsys)
    assert "unknown data kind 'tabular'" in err and "nlu" in err


def test_an_unknown_slot_label_scheme_is_refused_naming_the_setting(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "hi", "intent": "greet"}])
    assert main(["train", "--task", "nlu", "--data", str(data), "--output",
                 str(tmp_path / "run"), "--set", "data.slot_labels=every"]) == 2
    err = error_line(capsys)
    assert "slot_labels" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
