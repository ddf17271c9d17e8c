"""`dialogtune data check` / `fix` and the train command's fast checks: every finding kind,
the file's own line numbers, PII true and false positives, and the CLI's exit codes."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from dialogtune.cli import main
from dialogtune.data.quality.check import CheckOptions, check_files
from dialogtune.data.transform.fix import FixOptions, fix_file
from dialogtune.data.formats import read_intents
from dialogtune.data.quality.near_dup import script_shingles, similar_texts
from dialogtune.data.quality.pii import find_pii, iban_valid, luhn_valid, redact
from dialogtune.data.quality.checks import fast_check_warnings, normalize
from dialogtune.data.quality.report import render_html
from dialogtune.errors import DataError, DialogtuneError

# Planted intent data: the comment is the line each record starts on.
TRAIN_CSV = (
    "text,label,id\n"                                       # 1 header
    "where is my card,card,a\n"                             # 2
    "Where is  my card?,card,b\n"                           # 3 exact duplicate of 2
    '"my card,\nit has not arrived",card,c\n'               # 4-5 multi-line record
    "\n"                                                    # 6 blank
    "can you please block my stolen credit card,card,d\n"  # 7
    "can you please block my stolen credit cards,card,e\n"  # 8 near duplicate of 7
    "send money to my friend,card,f\n"                      # 9 conflict with 10
    "Send money to my friend!,transfer,g\n"                 # 10
    '"   ",transfer,h\n'                                    # 11 empty
    "only,one,row,too,many\n"                               # 12 malformed
    "mail me at jane.doe@example.com,balance,i\n"           # 13 email
    "my card 4111 1111 1111 1111 was charged,card,j\n"      # 14 card
    "order 1234 5678 1234 5678 is late,transfer,k\n"        # 15 not a card
    "call me on +44 20 7946 0958,balance,l\n"               # 16 phone
    "iban DE89 3704 0044 0532 0130 00 please,transfer,m\n"  # 17 IBAN
    "what is the exchange rate,exchange,n\n"                # 18 rare label
)
TEST_CSV = ("text,label\n"
            "where is my card,card\n"            # 2: exact leak of train 2 and 3
            "send money to my friends,transfer\n"  # 3: near leak of train 9
            "something else entirely,other\n")


class FakeTokenizer:
    """Whitespace 'tokens' + 2 specials: enough to test lengths without a model."""

    model_max_length = 10**30

    def __call__(self, texts, add_special_tokens=True, **_):
        extra = 2 if add_special_tokens else 0
        return {"input_ids": [[0] * (len(t.split()) + extra) for t in texts]}


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def intent_report(tmp_path):
    train = write(tmp_path / "train.csv", TRAIN_CSV)
    test = write(tmp_path / "test.csv", TEST_CSV)
    options = CheckOptions(max_length=9, min_count=2)
    return check_files(train, test, options, tokenizer=FakeTokenizer())


def test_normalize_ignores_case_spacing_and_punctuation():
    assert normalize("  Where's   MY card?! ") == normalize("wheres my card") == "wheres my card"
    assert normalize("e-mail") == "e mail"
    assert normalize("???") == ""


def test_report_has_the_documented_top_level_keys(intent_report):
    for key in ("duplicates", "conflicts", "leakage", "pii", "label_counts", "imbalance",
                "lengths", "empty", "malformed", "counts"):
        assert key in intent_report
    json.dumps(intent_report)  # plain JSON


def test_exact_duplicates_with_csv_line_numbers(intent_report):
    groups = intent_report["duplicates"]["exact"]
    assert [g["lines"] for g in groups] == [[2, 3]]
    assert groups[0]["label"] == "card"


def test_near_duplicates_are_a_separate_kind(intent_report):
    near = intent_report["duplicates"]["near"]
    assert [pair["lines"] for pair in near] == [[7, 8]]
    assert near[0]["similarity"] >= 0.8


def test_conflicts_list_each_label_with_its_lines(intent_report):
    assert intent_report["conflicts"] == [{
        "text": "send money to my friend", "lines": [9, 10],
        "labels": {"card": [9], "transfer": [10]}}]


def test_leakage_exact_and_near(intent_report):
    exact = intent_report["leakage"]["exact"]
    assert [(f["line"], f["test_lines"]) for f in exact] == [(2, [2]), (3, [2])]
    near = intent_report["leakage"]["near"]
    assert [(f["line"], f["test_line"]) for f in near] == [(9, 3)]


def test_empty_and_malformed_rows_are_findings_not_errors(intent_report):
    assert [f["line"] for f in intent_report["empty"]] == [11]
    assert [(f["line"], f["field"]) for f in intent_report["malformed"]] == [(12, None)]
    assert "5 fields" in intent_report["malformed"][0]["message"]


def test_pii_kinds_and_lines(intent_report):
    found = [(f["line"], f["kind"]) for f in intent_report["pii"]]
    assert found == [(13, "email"), (14, "card"), (16, "phone"), (17, "iban")]


def test_label_counts_imbalance_and_lengths(intent_report):
    counts = intent_report["label_counts"]
    assert counts["card"] == 7 and counts["exchange"] == 1 and "transfer" in counts
    imbalance = intent_report["imbalance"]
    assert imbalance["ratio"] == 7.0 and imbalance["max"]["label"] == "card"
    assert {"label": "exchange", "count": 1, "lines": [18]} in imbalance["under_minimum"]
    lengths = intent_report["lengths"]
    assert lengths["chars"]["max"] == len("can you please block my stolen credit cards")
    assert lengths["tokens"]["p50"] > 0 and lengths["max_length"] == 9
    assert [f["line"] for f in lengths["over_max"]] == [7, 8, 14, 17]
    assert intent_report["counts"]["over_max_length"] == 4


def test_jsonl_lines_count_blank_lines(tmp_path):
    rows = [{"text": "lost card", "label": "card"}, None, {"text": "lost card", "label": "card"},
            None, None, {"label": "card"}, {"text": "", "label": "card"}]
    text = "\n".join("" if r is None else json.dumps(r) for r in rows) + "\n"
    report = check_files(write(tmp_path / "d.jsonl", text), tokenizer=FakeTokenizer())
    assert report["duplicates"]["exact"][0]["lines"] == [1, 3]
    assert [(m["line"], m["message"][:7]) for m in report["malformed"]] == [(6, "no text")]
    assert [e["line"] for e in report["empty"]] == [7]


def test_crlf_csv_lines_and_bom(tmp_path):
    text = "\ufefftext,label\r\nlost card,a\r\n\r\n\"two\r\nlines\",a\r\nLost card,a\r\n"
    report = check_files(write(tmp_path / "d.csv", text), tokenizer=FakeTokenizer())
    assert report["duplicates"]["exact"][0]["lines"] == [2, 6]


def test_near_threshold_must_be_a_fraction(tmp_path):
    with pytest.raises(DialogtuneError, match="--near"):
        check_files(write(tmp_path / "d.csv", TRAIN_CSV), options=CheckOptions(near_threshold=2),
                    tokenizer=FakeTokenizer())


# --- dialogues ---------------------------------------------------------------------------

LONG = " ".join(f"word{i}" for i in range(40))


def chat(*turns, **extra):
    return json.dumps({**extra, "messages": [{"role": r, "content": c} for r, c in turns]})


DIALOGUES = [
    chat(("system", "be nice"), ("user", "hi"), ("assistant", "hello, how can I help?")),  # 1
    "",                                                                                    # 2
    chat(("user", "hi"), ("user", "anyone?"), ("assistant", "yes")),                       # 3
    chat(("assistant", "welcome"), ("user", "thanks")),                                    # 4
    chat(("user", "   "), ("assistant", "pardon?")),                                       # 5
    chat(("user", "is anyone there")),                                                     # 6
    chat(("system", "Be nice."), ("user", "Hi!"), ("assistant", "Hello, how can I help?")),  # 7
    chat(("user", "email me at bob@example.org"), ("assistant", "ok"), ("system", "late")),  # 8
    "{not json",                                                                           # 9
    chat(("user", "what is my balance"), ("assistant", "it is 10 euros")),                 # 10
    chat(("user", "what is my balance"), ("assistant", "you have 20 euros")),              # 11
    chat(("user", LONG), ("assistant", "ok")),                                             # 12
    json.dumps({"messages": [{"role": "robot", "content": "x"}]}),                         # 13
    chat(("user", LONG.replace("word20", "other")), ("assistant", "ok")),                  # 14
]


@pytest.fixture
def dialogue_report(tmp_path):
    train = write(tmp_path / "train.jsonl", "\n".join(DIALOGUES) + "\n")
    test = write(tmp_path / "test.jsonl", DIALOGUES[9] + "\n")
    return check_files(train, test, CheckOptions(max_length=30), tokenizer=FakeTokenizer())


def test_dialogue_structure_findings(dialogue_report):
    found = dialogue_report["dialogues"]
    assert {(f["line"], f["turn"]) for f in found["role_order"]} == {(3, 1), (4, 0), (8, 2)}
    assert [(f["line"], f["turn"]) for f in found["empty_turns"]] == [(5, 0)]
    assert dialogue_report["empty"] == found["empty_turns"]
    assert [f["line"] for f in found["no_assistant"]] == [6]
    assert [f["line"] for f in found["ends_on_user"]] == [4]
    assert [f["line"] for f in found["too_long"]] == [12, 14]


def test_dialogue_duplicates_conflicts_leakage_pii(dialogue_report):
    assert [g["lines"] for g in dialogue_report["duplicates"]["exact"]] == [[1, 7]]
    assert [p["lines"] for p in dialogue_report["duplicates"]["near"]] == [[12, 14]]
    assert [c["lines"] for c in dialogue_report["conflicts"]] == [[10, 11]]
    assert [f["line"] for f in dialogue_report["leakage"]["exact"]] == [10]
    assert [(f["line"], f["turn"], f["kind"]) for f in dialogue_report["pii"]] == [
        (8, 0, "email")]
    assert [(m["line"], m["field"]) for m in dialogue_report["malformed"]] == [
        (9, None), (13, "messages[0].role")]


def test_json_array_items_keep_their_file_lines(tmp_path):
    text = '[\n  {"messages": [{"role": "user", "content": "hi"}]},\n\n  {"messages": []}\n]\n'
    report = check_files(write(tmp_path / "d.json", text), tokenizer=FakeTokenizer())
    assert [f["line"] for f in report["dialogues"]["no_assistant"]] == [2]
    assert [m["line"] for m in report["malformed"]] == [4]
    broken = write(tmp_path / "b.json", '[\n  {"messages": []},\n  {"messages": [}\n]\n')
    with pytest.raises(DataError, match=r"b.json:3: malformed JSON array"):
        check_files(broken, tokenizer=FakeTokenizer())


def test_rasa_yaml_is_checked_with_its_lines(tmp_path):
    nlu = ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    - Hi!\n"
           "- intent: bye\n  examples: |\n    - hi\n")
    report = check_files(write(tmp_path / "nlu.yml", nlu), tokenizer=FakeTokenizer())
    assert report["format"] == "rasa"
    assert report["conflicts"][0]["labels"] == {"greet": [4, 5], "bye": [8]}


# --- PII ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind", [
    ("write to jane.doe+bank@mail.example.co.uk today", "email"),
    ("card 4111 1111 1111 1111", "card"),
    ("card 4111-1111-1111-1111", "card"),
    ("amex 378282246310005", "card"),
    ("mastercard 5555555555554444 please", "card"),
    ("iban DE89 3704 0044 0532 0130 00", "iban"),
    ("iban GB82WEST12345698765432", "iban"),
    ("ring +44 20 7946 0958", "phone"),
    ("ring (555) 123-4567", "phone"),
    ("ring 555-123-4567", "phone"),
    ("ring 555.123.4567", "phone"),
    ("ring 07700 900123", "phone"),
    ("ring +447700900123", "phone"),
    ("ring 0049 30 1234567", "phone"),
    ("ring +1 (555) 123-4567", "phone"),
    ("ring +33 1 23 45 67 89", "phone"),
])
def test_pii_true_positives(text, kind):
    assert [m.kind for m in find_pii(text)] == [kind]


@pytest.mark.parametrize("text", [
    "order 1234 5678 1234 5678 is late",        # 16 digits, fails Luhn
    "order 4111111111111112",                   # one digit off a test card
    "iban DE89 3704 0044 0532 0130 01",         # wrong checksum
    "in 2023 I paid 1,250.00 euros",            # year and amount
    "transfer 1 000 000 000 please",            # grouped amount
    "on 2023-01-15 at 10:30",                   # date and time
    "my pin is 1234 and code 987654",           # short numbers
    "reference 123456789012",                   # bare digits are not a phone
    "the years 2019 2020 2021",
    "email support at the bank",                # no address
    "user@localhost",                           # no domain suffix
    "sort code 12-34-56",
    "server 192.168.100.200",
])
def test_pii_false_positives(text):
    assert find_pii(text) == []


def test_luhn_and_iban_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and iban_valid("gb82west12345698765432")
    assert not iban_valid("DE00 3704 0044 0532 0130 00") and not iban_valid("DE89")


def test_redact_replaces_each_kind_once():
    text, matches = redact("mail a@b.io or card 4111 1111 1111 1111, ring +44 20 7946 0958")
    assert text == "mail [EMAIL] or card [CARD], ring [PHONE]"
    assert [m.kind for m in matches] == ["email", "card", "phone"]


# --- near duplicates ---------------------------------------------------------------------


def brute_force(texts, threshold):
    sets = [set(script_shingles(t)) for t in texts]
    return {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))
            if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= threshold}


def test_minhash_lsh_matches_brute_force_on_planted_variants():
    rng = random.Random(0)
    words = "card balance send money please my the lost new pin top up fee when why".split()
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(150)]
    variants = [t + rng.choice(["s", " now", "", "!"]) for t in base[:60]]
    texts = list(dict.fromkeys(normalize(t) for t in base + variants))
    for threshold in (0.7, 0.8, 0.9):
        found = {(i, j) for i, j, _ in similar_texts(texts, threshold)}
        assert found == brute_force(texts, threshold)


# --- fix ---------------------------------------------------------------------------------


def test_fix_dedupes_drops_conflicts_redacts_and_keeps_format(tmp_path):
    train = write(tmp_path / "train.csv", TRAIN_CSV)
    out = tmp_path / "clean.csv"
    changes = fix_file(train, out, FixOptions(dedupe=True, drop_conflicts=True,
                                              redact_pii=True))
    assert changes["unreadable"] == [12] and changes["empty"] == [11]
    assert changes["duplicates"] == [3] and changes["conflicts"] == [9, 10]
    assert changes["redacted"] == {"email": [13], "card": [14], "phone": [16], "iban": [17]}
    assert out.read_text().splitlines()[0] == "text,label,id"
    texts = [r.text for r in read_intents(out, require_labels=1)]
    assert "mail me at [EMAIL]" in texts and "where is my card" in texts
    assert "Where is  my card?" not in texts and "send money to my friend" not in texts
    assert changes["kept"] == len(texts) == 10
    again = check_files(out, tokenizer=FakeTokenizer())["counts"]
    assert again["exact_duplicates"] == again["conflicts"] == again["pii"] == 0


def test_fix_refuses_to_overwrite_its_input(tmp_path):
    train = write(tmp_path / "train.csv", TRAIN_CSV)
    with pytest.raises(DataError, match="output is the input"):
        fix_file(train, tmp_path / "." / "train.csv", FixOptions(dedupe=True))
    assert train.read_text() == TRAIN_CSV


def test_fix_redacts_dialogue_turns_in_place(tmp_path):
    train = write(tmp_path / "d.jsonl", "\n".join(DIALOGUES) + "\n")
    out = tmp_path / "clean.jsonl"
    changes = fix_file(train, out, FixOptions(dedupe=True, redact_pii=True))
    assert changes["unreadable"] == [9, 13] and changes["duplicates"] == [7]
    assert changes["redacted"] == {"email": [8]}
    lines = out.read_text().splitlines()
    assert len(lines) == changes["kept"] == 10
    assert json.loads(lines[5])["messages"][0]["content"] == "email me at [EMAIL]"


# --- train-time fast checks --------------------------------------------------------------


def test_fast_check_warnings_name_lines_and_point_to_data_check(tmp_path, caplog):
    from dialogtune.config import load_config
    from dialogtune.tasks.intent import load_intent_data

    rows = "".join(f"example {i},{'ab'[i % 2]}\n" for i in range(8))
    train = write(tmp_path / "t.csv", "text,label\nlost card,a\nLost card!,a\ncard,a\ncard,b\n"
                  + rows)
    evaluation = write(tmp_path / "e.csv", "text,label\nexample 3,b\nother,a\n")
    cfg = load_config(None, [], **{"data.train": str(train), "data.eval": str(evaluation)})
    with caplog.at_level(logging.WARNING, logger="dialogtune"):
        load_intent_data(cfg)
    text = caplog.text
    assert "1 duplicate utterance(s)" in text and "lines 2, 3" in text
    assert "1 text(s) filed under more than one intent" in text
    assert "1 training utterance(s) also occur in the evaluation data" in text
    assert f"dialogtune data check {train} --test {evaluation}" in text
    assert fast_check_warnings(read_intents(evaluation, require_labels=1)) == []


# --- CLI ---------------------------------------------------------------------------------


def test_cli_check_writes_json_and_html_and_exits_zero(tmp_path, tiny_bert, capsys):
    train = write(tmp_path / "train.csv", TRAIN_CSV)
    test = write(tmp_path / "test.csv", TEST_CSV)
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    code = main(["data", "check", str(train), "--test", str(test), "--output", str(out),
                 "--html", str(page), "--model", tiny_bert, "--min-count", "2"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["counts"]["conflicts"] == 1 and report["lengths"]["tokens"]["max"] > 0
    printed = capsys.readouterr().out
    assert "Conflicts" in printed and "lines 9, 10" in printed
    assert "<h2 id='pii'>" in page.read_text()


@pytest.mark.parametrize("content, message", [
    (None, "file not found"), (b"text,label\n\xff,a\n", ":2: not valid UTF-8")])
def test_cli_check_unreadable_file_is_one_line_error(tmp_path, capsys, content, message):
    """Missing or undecodable: exit code 2 and the DataError's one line, no traceback."""
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_bytes(content)
    assert main(["data", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("error:")


def test_test_file_of_another_kind_is_refused(tmp_path):
    train = write(tmp_path / "train.csv", TRAIN_CSV)
    test = write(tmp_path / "test.jsonl", DIALOGUES[0] + "\n")
    with pytest.raises(DataError, match="test file holds dialogue data"):
        check_files(train, test, tokenizer=FakeTokenizer())


def test_html_escapes_texts(intent_report):
    intent_report["empty"][0]["text"] = "<script>alert(1)</script>"
    intent_report["duplicates"]["exact"][0]["text"] = "<b>x</b>"
    page = render_html(intent_report)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_lone_surrogates_from_json_escapes_are_reported_not_crashed_on(tmp_path, tiny_bert):
    import io

    from rich.console import Console
    from transformers import AutoTokenizer

    from dialogtune.data.quality.report import print_summary, write_html, write_json

    line = '{"text": "lost \\ud800 card", "label": "%s"}\n'
    path = write(tmp_path / "s.jsonl", line % "a" + line % "b")
    report = check_files(path, tokenizer=AutoTokenizer.from_pretrained(tiny_bert))
    assert report["counts"]["conflicts"] == 1 and report["lengths"]["tokens"]["max"] > 0
    write_json(report, tmp_path / "r.json")
    write_html(report, tmp_path / "r.html")
    print_summary(report, Console(file=io.StringIO()))
    assert json.loads((tmp_path / "r.json").read_text())["conflicts"][0]["text"] == \
        "lost \ud800 card"
