"""The checkable values a reply states: numbers and amounts, times, dates, phone numbers
and names, each with normalised keys so that two spellings of one value meet.

Pure text functions (no model, no I/O), English-centred, kept simple on purpose; what
each kind normalises to (the ``keys`` of a :class:`Value`):

- phone numbers ``phone:<digits>``: 10 digits, a leading US ``1`` dropped
  ("(408) 971-8523" = "408-971-8523" = "4089718523");
- dates ``date:MM-DD`` (the year is ignored: replies rarely say it): ISO "2019-03-01",
  "March 1st", "1 March", "the 1st of March", US "3/1"; weekdays and relative dates
  ("today", "next Monday") are not values;
- times ``time:HH:MM`` on the 24-hour clock: "6:30 pm" = "18:30", "6 pm" = "18:00",
  "12 am" = "00:00", "11 in the morning" = "11:00"; a time without am/pm and an hour up
  to 12 ("6:30") matches both halves of the day;
- numbers and amounts ``num:<decimal>``: currency signs and thousands commas dropped,
  trailing decimal zeros too ("$5,118.77" = "5118.77", "$1,630.00" = "1630"); digits only in
  replies, while known text (what the user and the tools said) also reads number words
  ("eight hundred dollars" = 800) and days without a month ("the 14th"), so "$800" and
  "March 14th" are grounded by them;
- names ``word:<w>`` for each of its words (a name is stated when all its words are):
  capitalised words that do not start a sentence and are not common words (``COMMON``:
  pronouns, greetings, weekdays, months...), consecutive ones read as one name
  ("at Bird Dog in Palo Alto" → "Bird Dog", "Palo Alto"). A sentence-initial name is
  missed (never flagged): the extractor errs towards flagging less.

:func:`known_keys` turns text (dialogue turns, tool results as JSON) into the set of keys
it states, every word included; :func:`is_stated` says whether a value is among them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_MONTH = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
PHONE = re.compile(r"(?<![\d$])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\d])")
DATES = [(re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), lambda m: (m[2], m[3])),
         (re.compile(rf"\b{_MONTH}\s+{_DAY}\b", re.IGNORECASE), lambda m: (_month(m[1]), m[2])),
         (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?![a-z])", re.IGNORECASE),
          lambda m: (_month(m[2]), m[1])),
         (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:/(?:\d{4}|\d{2}))?(?![\d/])"),
          lambda m: (m[1], m[2]))]
TIME_12 = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
TIME_24 = re.compile(r"(?<![\d.:])(\d{1,2}):(\d{2})(?![\d:])")
TIME_WORDS = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s+(?:o'?clock\s+)?(?:in\s+the\s+)?"
                        r"(morning|afternoon|evening|night)\b", re.IGNORECASE)
DAY_ONLY = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.,])[$€£]?\s?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w]|[.,]\d)")
WORD = re.compile(r"[^\W\d_][\w'’]*")
SENTENCE_START = re.compile(r"(?:^|[.!?:;\n])[\s\"“'‘(\[*•-]*$")
COMMON = frozenset("""
i i'm i'll i've i'd me my mine we we're we'll we've our you you're you'll your yours he she
it it's its they they're them their this that these those there here what which who whom
whose when where why how a an the and or but if so of in on at to for from by with about
as is are was were be been am do does did have has had can could will would shall should
may might must not no yes yeah yep ok okay sure hi hello hey dear thanks thank please
sorry great perfect alright all right good fine bye goodbye welcome excellent awesome
unfortunately also just let let's well oh wow congratulations absolutely certainly
monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight yesterday
now then mr mrs ms dr st am pm usd
""".split()) | frozenset(_MONTHS)
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_NUMBER_WORDS.update({w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())})
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_NUMBER_WORD = "|".join(sorted([*_NUMBER_WORDS, *_SCALES], key=len, reverse=True))
NUMBER_RUN = re.compile(rf"\b(?:{_NUMBER_WORD})(?:(?:(?<=hundred)\s+and|(?<=thousand)\s+and)?"
                        rf"[\s-]+(?:{_NUMBER_WORD}))*\b",
                        re.IGNORECASE)


@dataclass(frozen=True)
class Value:
    """One stated value: its ``kind``, the ``text`` as written and its normalised ``keys``
    (any one shared key matches, except names, whose words must all be stated)."""

    kind: str
    text: str
    keys: frozenset[str]


def _month(name: str) -> int:
    return next(i + 1 for i, month in enumerate(_MONTHS) if month.startswith(name[:3].lower()))


def number_key(text: str) -> str | None:
    """``num:<decimal>`` of a written number ("$1,630.00" → ``num:1630``), None if none."""
    try:
        number = Decimal(re.sub(r"[$€£,\s]", "", text))
    except InvalidOperation:
        return None
    return f"num:{format(number.normalize(), 'f')}" if number.is_finite() else None


def _time_keys(hour: int, minute: int, meridiem: str | None) -> frozenset[str]:
    if meridiem:
        hours = {hour % 12 + (12 if meridiem.lower() == "p" else 0)}
    else:
        hours = {hour, (hour + 12) % 24} if 1 <= hour <= 12 else {hour}
    return frozenset(f"time:{h:02d}:{minute:02d}" for h in hours)


def _blank(text: str, match: re.Match) -> str:
    """``text`` with the match replaced by spaces (later kinds must not read it again)."""
    return text[:match.start()] + " " * (match.end() - match.start()) + text[match.end():]


def _phones(text: str) -> tuple[list[Value], str]:
    values = []
    for match in PHONE.finditer(text):
        digits = re.sub(r"\D", "", match[0])
        digits = digits[1:] if len(digits) == 11 else digits
        values.append(Value("phone", match[0].strip(), frozenset({f"phone:{digits}"})))
        text = _blank(text, match)
    return values, text


def _dates(text: str) -> tuple[list[Value], str]:
    values = []
    for pattern, month_day in DATES:
        for match in pattern.finditer(text):
            month, day = (int(x) for x in month_day(match))
            if 1 <= month <= 12 and 1 <= day <= 31:
                values.append(Value("date", match[0], frozenset({f"date:{month:02d}-{day:02d}"})))
                text = _blank(text, match)
    return values, text


def _meridiem(pattern: re.Pattern, match: re.Match) -> str | None:
    """``a``, ``p`` or None (a bare time) for a match of one of the time patterns."""
    if pattern is TIME_24:
        return None
    return "a" if match[3].lower() in ("a", "morning") else "p"


def _times(text: str) -> tuple[list[Value], str]:
    values = []
    for pattern in (TIME_12, TIME_WORDS, TIME_24):
        for match in pattern.finditer(text):
            hour, minute = int(match[1]), int(match[2] or 0)
            meridiem = _meridiem(pattern, match)
            if minute < 60 and (hour <= 12 if meridiem else hour <= 23):
                values.append(Value("time", match[0].strip(),
                                    _time_keys(hour, minute, meridiem)))
                text = _blank(text, match)
    return values, text


def _numbers(text: str) -> list[Value]:
    values = []
    for match in NUMBER.finditer(text):
        key = number_key(match[1] + (match[2] or ""))
        if key:
            values.append(Value("number", match[0].strip(), frozenset({key})))
    return values


def normal_word(word: str) -> str:
    """A word as names compare it: lower case, no possessive ("Angelo's" → "angelo")."""
    word = word.lower().replace("’", "'")
    return re.sub(r"'s?$", "", word)


def _names(text: str) -> list[Value]:
    """Runs of capitalised, non-initial, uncommon words (see the module's docstring)."""
    runs: list[list[re.Match]] = []
    for match in WORD.finditer(text):
        word = match[0]
        if (not word[0].isupper() or normal_word(word) in COMMON
                or SENTENCE_START.search(text[:match.start()])):
            continue
        if runs and not text[runs[-1][-1].end():match.start()].strip():
            runs[-1].append(match)
        else:
            runs.append([match])
    return [Value("name", text[run[0].start():run[-1].end()],
                  frozenset(f"word:{normal_word(m[0])}" for m in run)) for run in runs]


def extract_values(text: str) -> list[Value]:
    """Every value ``text`` states, in kind order: phones, dates, times, numbers, names."""
    phones, rest = _phones(text)
    dates, rest = _dates(rest)
    times, rest = _times(rest)
    return phones + dates + times + _numbers(rest) + _names(text)


def _words_value(run: str) -> int:
    """The number a run of number words spells ("eight hundred and five" → 805)."""
    total = current = 0
    for word in re.findall(r"[a-z]+", run.lower()):
        if word in _NUMBER_WORDS:
            current += _NUMBER_WORDS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total, current = total + max(current, 1) * _SCALES[word], 0
    return total + current


def spoken_as_digits(text: str) -> str:
    """``text`` with spelled-out numbers and clock phrases in digits ("one in the
    afternoon" → "1 in the afternoon", "half past seven" → "7:30", "a quarter to
    eight" → "7:45"), for reading what a user said."""
    text = NUMBER_RUN.sub(lambda m: str(_words_value(m[0])), text)
    text = re.sub(r"\bhalf past (\d{1,2})\b", r"\1:30", text, flags=re.IGNORECASE)
    text = re.sub(r"\b(?:a )?quarter past (\d{1,2})\b", r"\1:15", text, flags=re.IGNORECASE)
    return re.sub(r"\b(?:a )?quarter to (\d{1,2})\b",
                  lambda m: f"{(int(m[1]) - 2) % 12 + 1}:45", text, flags=re.IGNORECASE)


def day_keys(text: str) -> set[str]:
    """``date:`` keys of a day named without its month ("the 14th": any month's 14th)."""
    return {f"date:{month:02d}-{int(m[1]):02d}" for m in DAY_ONLY.finditer(text)
            for month in range(1, 13)}


def result_texts(content: str) -> list[str]:
    """The leaf values of a tool result (JSON), each its own text; the raw text when it is
    not JSON. Keys are field names, not values the backend returned."""
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        return [content]
    leaves: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            leaves.append(str(item))
    return leaves


def known_keys(texts: list[str]) -> frozenset[str]:
    """Every key the ``texts`` state: their values, spelled-out numbers, days named
    without a month and every word (known text is read more leniently than replies)."""
    keys: set[str] = set()
    for text in texts:
        for value in extract_values(text) + extract_values(spoken_as_digits(text)):
            keys |= value.keys
        keys |= day_keys(text)
        keys |= {f"word:{normal_word(w)}" for w in WORD.findall(text)}
    return frozenset(keys)


def is_stated(value: Value, keys: frozenset[str]) -> bool:
    """Whether ``keys`` (of :func:`known_keys`) state ``value``."""
    if value.kind == "name":
        return value.keys <= keys
    return bool(value.keys & keys)
