"""``--tools FILE`` / ``data.tools``: one tool list for every dialogue without its own, read
from an OpenAI ``tools`` list or bare functions, refused in one line when malformed, and
carried by the config so a run, its evaluation and its resume see the same tools."""

from __future__ import annotations

import json

import pytest

from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.data.formats import read_dialogues
from dialogtune.data.formats.tools_file import read_tools_file
from dialogtune.errors import DataError
from dialogtune.runs.fingerprint import run_fingerprint
from helpers import DIALOGUES, write_jsonl

BALANCE = {"name": "CheckBalance", "description": "The balance of an account",
           "parameters": {"type": "object", "properties": {
               "account_type": {"type": "string", "enum": ["checking", "savings"]}},
               "required": ["account_type"]}}
OWN = {"name": "FindRestaurants", "parameters": {"type": "object", "properties": {}}}
OPENAI = [{"type": "function", "function": BALANCE}]


def write_json(path, value):
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


@pytest.mark.parametrize("content", [OPENAI, [BALANCE], {"tools": OPENAI}, {"tools": [BALANCE]}])
def test_openai_list_bare_functions_or_an_object_holding_them(tmp_path, content):
    assert read_tools_file(write_json(tmp_path / "tools.json", content)) == OPENAI


@pytest.mark.parametrize("content, message", [
    (None, "tools.json: file not found"),
    ("[{oops", "tools.json:1: not valid JSON"),
    ({"name": "CheckBalance"}, "tools.json: expected a JSON list of tools"),
    ([], "tools.json: the tools file lists no tools"),
    ([{"description": "no name"}], "tools.json (field 'tools[0]'): a tool needs a 'function' "
                                   "with a 'name'"),
    ([{"name": "F", "parameters": {"type": "object", "properties": {"x": {"type": "strin"}}}}],
     "tools.json (field 'tools[0].parameters'): F: properties.x.type: 'strin' is not valid"),
    ([{"name": "F", "parameters": {"type": "object", "required": ["x"], "properties": {}}}],
     "F: required key 'x' has no property"),
    ([{"name": "F", "parameters": {"type": "string"}}], "F: parameters must have type 'object'"),
    ([BALANCE, BALANCE], "(field 'tools'): CheckBalance: defined 2 times"),
])
def test_a_bad_tools_file_is_one_line_naming_file_and_field(tmp_path, content, message):
    path = tmp_path / "tools.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content),
                        encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_tools_file(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture
def mixed(tmp_path):
    """Two dialogues: the first with tools of its own, the second with none."""
    own = {**DIALOGUES[0], "tools": [{"type": "function", "function": OWN}]}
    return write_jsonl(tmp_path / "mixed.jsonl", [own, DIALOGUES[2]])


def test_a_dialogues_own_tools_win_over_the_files(tmp_path, mixed):
    tools = write_json(tmp_path / "tools.json", [BALANCE])
    first, second = read_dialogues(mixed, tools=tools)
    assert [t["function"]["name"] for t in first.extra["tools"]] == ["FindRestaurants"]
    assert second.extra["tools"] == OPENAI
    assert "tools" not in read_dialogues(mixed)[1].extra


def test_data_tools_is_a_config_setting_the_chat_task_reads_and_replays(tmp_path, mixed):
    from dialogtune.tasks import get_task

    tools = write_json(tmp_path / "tools.json", OPENAI)
    cfg = load_config(None, [f"data.tools={tools}"], task="chat")
    assert get_task("chat").read_data(cfg, str(mixed))[1].extra["tools"] == OPENAI
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml(), encoding="utf-8")
    assert load_config(saved).data.tools == str(tools)


def test_the_tools_files_content_is_part_of_the_resume_fingerprint(tmp_path):
    tools = write_json(tmp_path / "tools.json", OPENAI)
    cfg = load_config(None, [f"data.tools={tools}"], task="chat")
    before = run_fingerprint(cfg)["data"]["data.tools"]
    write_json(tools, [BALANCE, OWN])
    assert run_fingerprint(cfg)["data"]["data.tools"] != before


def test_data_check_tools_option_fills_dialogues_without_tools(tmp_path, mixed, folder):
    tools = write_json(tmp_path / "tools.json", [BALANCE])
    report = tmp_path / "report.json"
    assert main(["data", "check", str(mixed), "--tools", str(tools), "--model", folder,
                 "--output", str(report)]) == 0
    summary = json.loads(report.read_text(encoding="utf-8"))["tools"]["summary"]
    assert summary["dialogues_with_tools"] == 2 and summary["tools_file"] == str(tools)


@pytest.mark.parametrize("verb", [["data", "check"], ["data", "inspect"]])
def test_cli_missing_tools_file_is_one_line(tmp_path, mixed, folder, capsys, verb):
    assert main([*verb, str(mixed), "--model", folder, "--tools",
                 str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope.json: file not found" in err and "\n" not in err


def test_train_and_eval_take_tools(tmp_path, folder, data, capsys):
    """``train --tools`` lands in the run's config; ``eval --tools`` replaces it, and a
    missing file stops evaluation before any model is loaded."""
    tools = write_json(tmp_path / "tools.json", [BALANCE])
    run = tmp_path / "run"
    assert main(["train", "--task", "chat", "--data", str(data), "--model", folder,
                 "--output", str(run), "--tools", str(tools), "--set", "train.max_steps=1",
                 "--set", "train.num_threads=1"]) == 0
    assert load_config(run / "config.yaml").data.tools == str(tools)
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--tools",
                 str(tmp_path / "gone.json")]) == 2
    assert "gone.json: file not found" in capsys.readouterr().err
