"""Data checks that know scripts (issue 15, item 3), on Chinese fixtures written for these
tests: normalisation, near duplicates on characters, dialogue checks, and PII."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from dialogtune.data.quality.check import check_files
from dialogtune.data.quality.checks import normalize
from dialogtune.data.quality.near_dup import script_shingles, similar_texts, word_shingles
from dialogtune.data.quality.pii import find_pii, redact, redact_with_spans, resident_id_valid
from dialogtune.data.script import corpus_script, is_unspaced, word_units


def jaccard(a: str, b: str) -> float:
    x, y = set(script_shingles(normalize(a))), set(script_shingles(normalize(b)))
    return len(x & y) / len(x | y)


def resident_id(first17: str) -> str:
    """A resident ID number with its ISO 7064 MOD 11-2 check character, computed by hand
    from the standard's weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights))
    return first17 + "10X98765432"[total % 11]


# --- normalisation and scripts -------------------------------------------------------------

def test_cjk_punctuation_and_spacing_normalise_like_ascii():
    assert normalize("我的卡丢了，怎么办") == normalize("我的卡丢了怎么办") == "我的卡丢了怎么办"
    assert normalize("「我的卡」丢了。怎么办？") == "我的卡丢了怎么办"
    assert normalize("我的卡丢了、怎么办！") == normalize("我的卡 丢了 怎么办")
    assert normalize("我的 iPhone 坏了") == normalize("我的iPhone坏了")
    assert normalize("Ｗｈｅｒｅ　is my card？") == "where is my card"  # full-width forms
    assert normalize("where is my card") == "where is my card"  # English unchanged


def test_word_units_split_unspaced_scripts_into_characters():
    assert word_units("我的卡 lost 了!") == ["我", "的", "卡", "lost", "了"]
    assert word_units("カードを なくした") == ["カ", "ー", "ド", "を", "な", "く", "し", "た"]
    assert word_units("card 카드 lost") == ["card", "카드", "lost"]  # Korean keeps its spaces
    assert is_unspaced("我的iPhone坏了") and not is_unspaced("I bought it in 北京")


def test_corpus_script_detection():
    assert corpus_script(["我的信用卡丢了", "请帮我挂失"]) == "zh"
    assert corpus_script(["カードをなくしました", "残高を確認したい"]) == "ja"
    assert corpus_script(["where is my card", "我的"]) == "spaced"
    assert corpus_script([]) == "spaced"


# --- near duplicates ------------------------------------------------------------------------

def test_one_character_edit_of_a_chinese_sentence_is_a_near_duplicate():
    a, b = "我的信用卡丢了怎么办，请帮我挂失", "我的信用卡掉了怎么办，请帮我挂失"
    assert jaccard(a, b) >= 0.8  # 3-grams gave 0.615, under the 0.8 default
    found = similar_texts([normalize(a), normalize(b), normalize("我想查一下余额")], 0.8)
    assert [(i, j) for i, j, _ in found] == [(0, 1)]


def test_different_chinese_requests_stay_apart():
    texts = ["我的信用卡丢了怎么办", "我想查一下账户余额", "帮我转账给朋友", "信用卡的额度是多少"]
    assert similar_texts([normalize(t) for t in texts], 0.5) == []


def test_dialogue_shingles_see_chinese_characters():
    shingles = word_shingles("user: 我的卡丢了\nassistant: 好的", 3)
    assert "我 的 卡" in shingles and len(shingles) > 3


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_data_check_finds_chinese_duplicates_and_leakage(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [
        {"text": "我的卡丢了怎么办", "label": "挂失"},
        {"text": "我的卡丢了，怎么办？", "label": "挂失"},             # exact after normalising
        {"text": "我的信用卡丢了怎么办，请帮我挂失", "label": "挂失"},
        {"text": "我的信用卡掉了怎么办，请帮我挂失", "label": "挂失"},  # near duplicate
        {"text": "我想查一下账户余额", "label": "余额"},
        {"text": "帮我看看余额还有多少", "label": "余额"},
    ])
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": "我想查一下账户余额。", "label": "余额"}])
    report = check_files(train, test)
    assert [g["lines"] for g in report["duplicates"]["exact"]] == [[1, 2]]
    assert [p["lines"] for p in report["duplicates"]["near"]] == [[3, 4]]
    assert [f["line"] for f in report["leakage"]["exact"]] == [5]


def test_data_check_matches_chinese_dialogues(tmp_path):
    def dialogue(reply: str) -> dict:
        return {"messages": [{"role": "user", "content": "你好，我的信用卡丢了，请帮我挂失一下，谢谢"},
                             {"role": "assistant", "content": reply}]}
    data = write_jsonl(tmp_path / "d.jsonl", [
        dialogue("好的，已经为您挂失了信用卡，新卡会在五个工作日内寄出。"),
        dialogue("好的，已经为您挂失了信用卡，新卡将在五个工作日内寄出。"),
        {"messages": [{"role": "user", "content": "我想查一下余额"},
                      {"role": "assistant", "content": "您的余额是一千元。"}]},
    ])
    report = check_files(data)
    assert [p["lines"] for p in report["duplicates"]["near"]] == [[1, 2]]


# --- personal data ------------------------------------------------------------------------

def test_mainland_mobile_numbers():
    for text in ("我的手机是13812345678，请回电", "电话13812345678", "call +86 138 1234 5678",
                 "手机：138-1234-5678"):
        assert [m.kind for m in find_pii(text)] == ["phone"], text
    assert redact("我的手机是13812345678，请回电")[0] == "我的手机是[PHONE]，请回电"
    # a bare 11-digit run in English text is as likely an order number
    assert find_pii("order 13812345678 shipped") == []
    assert find_pii("我的订单号是123456789012") == []  # 12 digits: not a mobile number


def test_resident_id_numbers_need_their_check_digit_and_a_real_birth_date():
    valid = resident_id("11010519491231002")
    assert valid[-1] == "X" and resident_id_valid(valid)
    assert redact(f"身份证号{valid}谢谢")[0] == "身份证号[ID]谢谢"
    wrong_check = valid[:-1] + "3"
    assert not resident_id_valid(wrong_check) and find_pii(f"身份证{wrong_check}") == []
    impossible_day = resident_id("11010519490231002")  # 31 February
    assert not resident_id_valid(impossible_day)
    unborn = resident_id(f"110105{date.today().year + 1}0101002")
    assert not resident_id_valid(unborn)


def test_email_and_phone_next_to_chinese_characters_keep_the_words():
    text = "请发邮件到zhang.wei@example.com谢谢，或者打电话010-12345678吧"
    clean, matches = redact(text)
    assert clean == "请发邮件到[EMAIL]谢谢，或者打电话[PHONE]吧"
    assert [m.value for m in matches] == ["zhang.wei@example.com", "010-12345678"]


def test_redaction_moves_slot_spans_in_chinese_text():
    text = "把钱转给王伟，他的手机是13812345678"
    name = (text.index("王伟"), text.index("王伟") + 2)
    clean, spans, _ = redact_with_spans(text, [name])
    assert clean == "把钱转给王伟，他的手机是[PHONE]"
    assert clean[spans[0][0]:spans[0][1]] == "王伟"


def test_slot_spans_may_start_between_two_chinese_characters():
    from dialogtune.data.formats.nlu_spans import span_problem
    from dialogtune.data.records import Span

    text = "推荐一个评分是4分以上的北京工体A. Hotel酒店"
    for value in ("4分以上", "北京工体A. Hotel酒店", "北京"):
        start = text.index(value)
        assert span_problem(text, Span("x", start, start + len(value)), None) is None, value
    hotel = text.index("Hotel")
    assert "cuts a word" in span_problem(text, Span("x", hotel, hotel + 3), None)  # "Hot|el"


def test_the_chinese_example_domain_reads_strictly_and_the_demo_finds_it():
    from dialogtune.data.formats import read_dialogues
    from dialogtune.data.formats.nlu import read_nlu
    from dialogtune.demo import LANGUAGES, SHOWN_TURNS

    folder = LANGUAGES["zh"]
    train, test = (read_nlu(folder / f"nlu_{s}.jsonl").examples for s in ("train", "test"))
    assert len({e.intent for e in train}) >= 10 and {e.intent for e in test} <= {e.intent for e in train}
    assert any(len(e.slots) >= 2 for e in test)  # the demo shows such a turn
    assert not {e.text for e in train} & {e.text for e in test}
    assert corpus_script([e.text for e in train]) == "zh"
    for split in ("train", "test"):
        assert read_dialogues(folder / f"dialogues_{split}.jsonl")
    assert set(SHOWN_TURNS) == set(LANGUAGES)
