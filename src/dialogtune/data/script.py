"""Which writing system a text is in, and the units that carry its meaning.

Chinese and Japanese are written without spaces between words, so every rule that splits
on whitespace treats a whole Chinese clause as one "word": duplicate checks, n-gram
shingles, ROUGE and BLEU tokens. Here a character of an unspaced script is a unit of its
own (as sacrebleu's ``zh`` tokenizer and the CJK ROUGE convention do), while runs of other
letters and digits stay whole words. Hangul is not included: Korean separates words with
spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Han (with extensions A-G and compatibility ideographs), kana, Thai, Lao, Myanmar, Khmer
_UNSPACED_RANGES = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"
                    "\U00020000-\U0003134f")
UNSPACED = re.compile(f"[{_UNSPACED_RANGES}]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff]")
_UNIT = re.compile(f"[{_UNSPACED_RANGES}]|[^\\W{_UNSPACED_RANGES}]+")
_SPACE_BESIDE_UNSPACED = re.compile(f"(?<=[{_UNSPACED_RANGES}])\\s+|\\s+(?=[{_UNSPACED_RANGES}])")
# A text counts as unspaced when at least this share of its letters and digits are: a
# Chinese sentence with an English product name ("我的iPhone坏了", 5 of 11) still is.
UNSPACED_SHARE = 0.4


def word_units(text: str) -> list[str]:
    """Words of spaced scripts and single characters of unspaced ones, punctuation dropped.

    "我的卡 lost 了" → ["我", "的", "卡", "lost", "了"].
    """
    return _UNIT.findall(text)


def one_word(before: str, after: str) -> bool:
    """Whether two adjacent characters belong to one word: both letters or digits, and
    neither from an unspaced script, where each character is a word of its own ("是4分":
    three words; "clásicos": one)."""
    return (before.isalnum() and after.isalnum()
            and not UNSPACED.match(before) and not UNSPACED.match(after))


def unspaced_share(text: str) -> float:
    """The share of a text's letters and digits that belong to an unspaced script."""
    letters = sum(ch.isalnum() for ch in text)
    return len(UNSPACED.findall(text)) / letters if letters else 0.0


def is_unspaced(text: str) -> bool:
    """Whether ``text`` is mostly written in a script without spaces between words."""
    return unspaced_share(text) >= UNSPACED_SHARE


def join_unspaced(text: str) -> str:
    """Whitespace beside a character of an unspaced script removed: it carries no meaning
    there ("我的卡 丢了" and "我的卡丢了", "我的 iPhone 坏了" and "我的iPhone坏了" are the
    same sentence)."""
    return _SPACE_BESIDE_UNSPACED.sub("", text)


def has_unspaced(text: str) -> bool:
    """Whether ``text`` holds any character of an unspaced script."""
    return UNSPACED.search(text) is not None


def corpus_script(texts: Iterable[str]) -> str:
    """The script of a data set's texts: ``zh`` (Han without kana), ``ja`` (kana present),
    ``other-unspaced`` (Thai, Lao, Myanmar, Khmer) or ``spaced``, by where most letters are.
    """
    letters = unspaced = han = kana = 0
    for text in texts:
        letters += sum(ch.isalnum() for ch in text)
        unspaced += len(UNSPACED.findall(text))
        han += len(_HAN.findall(text))
        kana += len(_KANA.findall(text))
    if not letters or unspaced / letters < UNSPACED_SHARE:
        return "spaced"
    if kana * 20 > unspaced:  # a stray kana in Chinese text does not make it Japanese
        return "ja"
    return "zh" if han * 2 >= unspaced else "other-unspaced"
