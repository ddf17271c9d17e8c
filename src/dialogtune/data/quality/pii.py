"""Personal data in utterances: e-mail addresses, phone numbers, payment cards, IBANs and
mainland Chinese resident ID numbers.

Numbers are only reported when they pass the check a real one must pass (Luhn for cards,
mod 97 for IBANs, ISO 7064 MOD 11-2 and a real birth date for resident IDs) or look like a
dialled number, so order numbers, amounts and years stay quiet. Detection order matters:
IDs, IBANs and cards claim their digits before phone numbers look, so a card is never
reported twice.

Boundaries are ASCII letters and digits, not ``\\b``: Chinese characters are word
characters to ``re``, so "电话13812345678" or "发到abc@example.com谢谢" has no word boundary
at the number's or address's edge, and an e-mail's local part is ASCII only (otherwise it
swallowed the Chinese words in front of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ..script import has_unspaced

KINDS = ("email", "id_number", "iban", "card", "phone")
PLACEHOLDERS = {"email": "[EMAIL]", "id_number": "[ID]", "iban": "[IBAN]", "card": "[CARD]",
                "phone": "[PHONE]"}

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![A-Za-z0-9_+])(?:\+|00)?(?:\(?\d{1,4}\)?[ .-]?){1,2}\d{2,4}"
                    r"(?:[ .-]?\d{2,4}){1,3}(?![A-Za-z0-9_])")
# mainland China: 1[3-9] and 9 more digits, optionally after +86 / 0086, grouped 3-4-4 or not
_CN_MOBILE = re.compile(r"(?<![A-Za-z0-9+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
_CN_ID = re.compile(r"(?<![0-9])[1-9]\d{5}(?:18|19|20)\d{2}[01]\d[0-3]\d\d{3}[0-9Xx](?![0-9A-Za-z])")
_ID_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
_THOUSANDS = re.compile(r"\d{1,3}(?:[ .,]\d{3})+")
_DATE = re.compile(r"\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{4}")


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its kind and its span in the text."""

    kind: str
    start: int
    end: int
    value: str


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: 15-34 characters, country letters, and the mod-97 remainder 1."""
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    if not iban.isalnum() or not iban.isascii():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def resident_id_valid(value: str) -> bool:
    """GB 11643: a real, past birth date at characters 7-14 and, as the 18th character,
    the ISO 7064 MOD 11-2 check of the first 17 digits (10 written as X)."""
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return born <= date.today() and "10X98765432"[total % 11] == value[17].upper()


def _id_numbers(text: str) -> list[PiiMatch]:
    return [PiiMatch("id_number", m.start(), m.end(), m.group())
            for m in _CN_ID.finditer(text) if resident_id_valid(m.group())]


def _cn_mobiles(text: str) -> list[PiiMatch]:
    """Mainland mobile numbers. A bare 11-digit run only counts in text with Chinese or
    Japanese characters (elsewhere it is as likely an order number); +86 or 3-4-4
    grouping counts anywhere."""
    chinese = has_unspaced(text)
    return [PiiMatch("phone", m.start(), m.end(), m.group()) for m in _CN_MOBILE.finditer(text)
            if chinese or not m.group().isdigit()]


def _ibans(text: str) -> list[PiiMatch]:
    """Greedy matches are shortened group by group until one passes the checksum."""
    found = []
    for match in _IBAN.finditer(text):
        value = match.group()
        while len(value.replace(" ", "")) >= 15:
            if iban_valid(value):
                start = match.start()
                found.append(PiiMatch("iban", start, start + len(value), value))
                break
            cut = value.rfind(" ")
            value = value[:cut] if cut > 4 else value[:-1]
    return found


def _cards(text: str) -> list[PiiMatch]:
    found = []
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
            found.append(PiiMatch("card", match.start(), match.end(), match.group()))
    return found


def _looks_like_phone(value: str) -> bool:
    """A dialled number: 9-15 digits, and an international prefix, brackets or grouping.

    A bare run of digits is an order or account number as often as a phone number, so it
    only counts with a leading + / 00; thousands-grouped amounts and dates never count.
    """
    digits = re.sub(r"\D", "", value)
    if not 9 <= len(digits) <= 15:
        return False
    if _THOUSANDS.fullmatch(value) or _DATE.fullmatch(value):
        return False
    international = value.startswith(("+", "00"))
    grouped = bool(re.search(r"\d[ .-]\d", value)) or "(" in value
    if not (international or grouped):
        return False
    if international or "(" in value:
        return True
    return value[0] == "0" or len(digits) == 10 or bool(re.search(r"\d-\d", value))


def _phones(text: str) -> list[PiiMatch]:
    found = []
    for match in _PHONE.finditer(text):
        value = match.group().rstrip(" .-")
        if _looks_like_phone(value):
            found.append(PiiMatch("phone", match.start(), match.start() + len(value), value))
    return found


def find_pii(text: str) -> list[PiiMatch]:
    """Every piece of personal data in ``text``, in text order, without overlaps."""
    taken: list[PiiMatch] = []
    masked = text
    for finder in (_emails, _id_numbers, _ibans, _cards, _cn_mobiles, _phones):
        for match in finder(masked):
            taken.append(PiiMatch(match.kind, match.start, match.end,
                                  text[match.start:match.end]))
            # blank out claimed characters so later finders cannot reuse them
            masked = masked[:match.start] + "#" * (match.end - match.start) + masked[match.end:]
    return sorted(taken, key=lambda m: m.start)


def _emails(text: str) -> list[PiiMatch]:
    return [PiiMatch("email", m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]


def redact(text: str) -> tuple[str, list[PiiMatch]]:
    """``text`` with each piece of personal data replaced by a placeholder like [CARD]."""
    matches = find_pii(text)
    for match in reversed(matches):
        text = text[:match.start] + PLACEHOLDERS[match.kind] + text[match.end:]
    return text, matches


def redact_with_spans(text: str, spans: list[tuple[int, int]]
                      ) -> tuple[str, list[tuple[int, int]], list[PiiMatch]]:
    """``redact`` that keeps character spans (slot offsets) pointing at the same words.

    A span after a redaction shifts by the length difference; a span that overlaps a piece
    of personal data grows to cover its whole placeholder (a slot holding an e-mail holds
    "[EMAIL]" afterwards; one holding part of it, the placeholder too, as nothing is left
    of the part). Returns (clean text, new spans in the same order, matches).
    """
    clean, matches = redact(text)
    if not matches:
        return clean, list(spans), matches

    def moved(at: int, is_end: bool) -> int:
        shift = 0
        for match in matches:
            size = len(PLACEHOLDERS[match.kind])
            if match.end <= at:
                shift += size - (match.end - match.start)
            elif match.start < at:  # inside this match: snap to the placeholder's edge
                return match.start + shift + (size if is_end else 0)
            else:
                break
        return at + shift

    return clean, [(moved(s, False), moved(e, True)) for s, e in spans], matches
