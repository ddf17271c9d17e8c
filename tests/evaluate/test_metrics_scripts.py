"""Metrics that know scripts (issue 15, item 4): BLEU's tokenizer and ROUGE-L's unit follow
the references' script, on Chinese fixtures written for these tests."""

from __future__ import annotations

import pytest

from dialogtune.evaluate.chat import reply_metrics
from dialogtune.evaluate.metrics import bleu_tokenizer, corpus_bleu, rouge_l

REFERENCE = "您的信用卡已挂失，新卡会在五个工作日内寄出。"
REPLY = "您的信用卡已经挂失，新卡将在五个工作日内寄出。"


def test_chinese_bleu_uses_the_zh_tokenizer():
    assert bleu_tokenizer([REFERENCE]) == "zh"
    assert corpus_bleu([REPLY], [REFERENCE], "13a") == 0.0  # a clause is one "word"
    chinese = corpus_bleu([REPLY], [REFERENCE])
    assert 50 < chinese < 100
    assert chinese == pytest.approx(corpus_bleu([REPLY], [REFERENCE], "zh"))


def test_english_bleu_keeps_13a():
    english = ["your card is blocked", "the new card arrives on monday"]
    assert bleu_tokenizer(english) == "13a"
    assert corpus_bleu(english, english) == pytest.approx(100.0)


def test_rouge_l_on_characters_for_chinese():
    # LCS by hand: 您的信用卡已 挂失 新卡 在五个工作日内寄出 = 19 of 20 (reference) / 21 (reply)
    precision, recall = 19 / 21, 19 / 20
    assert rouge_l(REPLY, REFERENCE) == pytest.approx(2 * precision * recall / (precision + recall))
    assert rouge_l("我丢了卡", "余额多少") == 0.0
    assert rouge_l("我的卡丢了", "你的余额是多少") == pytest.approx(2 / 12)  # "的" only


def test_rouge_l_english_tokens_unchanged():
    assert rouge_l("Sending $20 to Amir at 10:30", "sending $20 to amir at 10:30") == 1.0
    assert rouge_l("a b c", "a c") == pytest.approx(0.8)


def test_reply_metrics_record_the_tokenizer(monkeypatch):
    class Sample:
        def __init__(self, reference):
            self.reference, self.slot_values = reference, []

    zh = reply_metrics([Sample(REFERENCE)], [REPLY])
    assert zh["bleu_tokenizer"] == "zh" and zh["rouge_l_unit"] == "character"
    assert zh["bleu"] > 50
    en = reply_metrics([Sample("your card is blocked")], ["your card is blocked"])
    assert en["bleu_tokenizer"] == "13a" and en["rouge_l_unit"] == "word"
