"""The short answer inside a cited sentence: the figure, date, name or phrase a question asks
for, as exact offsets into the sentence, so the reply can open with it and the reader can see
it highlighted where the source states it.

What a question asks for is read from its wording ("how much", "when", "who", "what do they
call"); candidates of that type in the sentence are ranked by how close they stand to the
question's own words there. No type, or no candidate of it: no short answer, and the cited
sentence alone answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from assistant.text import MONTHS, STOPWORDS, WEEKDAYS, day_spans, no_count, stem, words

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)"
)
_SCALE = r"(?:\s?(?:thousand|million|billion|trillion|bn|mn|m|k)\b)"
# Currencies written out: "4.2 million kroner", "300 francs" (what a "how much did it cost"
# question is answered by, as much as "$240 billion"). Not those that are also common words
# after a number ("won", "marks", "rand").
_CURRENCY = (
    r"dollars|euros|yuan|renminbi|roubles|rubles|pounds(?: sterling)?|francs|kroner|kronor|"
    r"krona|krone|yen|rupees|pesos|lira|lire|zloty|forints|reais|shekels|dinars|dirhams|"
    r"riyals|tenge|somoni|hryvnias?"
)
_UNIT = (
    r"(?:\s?%|\s?(?:per\s?cent|percent|percentage points?|(?:square\s)?(?:kilometres|kilometers|km|"
    r"metres|meters|miles|feet|ft)|km²|tonnes|tons|barrels|bcm|cubic metres|people|personnel|"
    r"troops|soldiers|members|states|countries|years|days|hours|students|institutes|"
    r"satellites|copies|units|points|degrees|dollars|euros|yuan|roubles|rubles)\b)"
)
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(
    rf"(?:(?:more|less|fewer) than |over |about |around |nearly |almost |some |up to )?"
    rf"(?:(?:US\s?)?[$€£¥₹₽₩]\s?{_NUMBER}{_SCALE}?|{_NUMBER}{_SCALE}?{_UNIT}?"
    rf"(?:\s(?:{_CURRENCY}))?)",
    re.I,
)
MONEY = re.compile(
    rf"(?:US\s?)?[$€£¥₹₽₩]\s?{_NUMBER}|{_NUMBER}{_SCALE}?\s(?:{_CURRENCY})\b",
    re.I,
)
DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s{_MONTH}\s\d{{4}}|{_MONTH}\s\d{{1,2}},?\s\d{{4}}|{_MONTH}\s\d{{4}}|"
    rf"(?:1[5-9]\d\d|20\d\d)s?)\b"
)
_QUOTED = re.compile(r"[“\"]([^”\"]{2,60})[”\"]")
# A name given after a naming verb: "also known as the Middle Corridor", "has been called
# Soyuz Vostok" (capitalised words, with small joining words inside).
_CAPITALISED = r"[A-Z][\w’']*(?:-[A-Z][\w’']*)*"
_NAMED_AS = re.compile(
    r"\b(?:called|known as|named|dubbed|termed|nicknamed|labell?ed|referred to as)\s+"
    rf"(?:the\s+)?({_CAPITALISED}(?:\s+(?:(?:of|the|and|for|de)\s+)*{_CAPITALISED})*)"
)
# A month or a weekday is capitalised but names no one: "who" is not answered by "January".
# Not "May": Theresa May is a "who" (a "May" inside a date is left out with the date).
_CALENDAR = frozenset([*(m for m in MONTHS if m != "May"), *WEEKDAYS])
_NAME = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:(?:of|the|de|van|von|al|bin)\s+)?[A-Z][\w’'.-]*)*")

_ASKS_MONEY = re.compile(
    r"\b(how much (?:money|did|does|do|was|is|were|are|has|had|will)?.*\b(?:cost|pay|paid|spend|"
    r"spent|invest|invested|worth|price|budget|fund|funded|financ\w*|lend|lent|loan)|"
    r"(?:what|how large|how big) (?:was|is|were|are) the (?:cost|price|budget|value|investment)|"
    r"budget|cost|price|how much money)\b",
    re.I,
)
_ASKS_FIGURE = re.compile(
    r"\b(how (?:many|much|large|big|high|deep|tall|wide|long|far|old|heavy|often)|"
    r"what (?:percentage|share|proportion|amount|figure|volume|value|number|size|fraction)|"
    r"what (?:was|is|were|are) (?:the |its |their )?(?:population|number|size|area|length|"
    r"height|depth|total|amount|volume|share|percentage|capacity|turnover)|"
    r"by how much)\b",
    re.I,
)
_ASKS_DATE = re.compile(
    r"\b(when|what year|which year|what date|on what day|in what year|since when)\b", re.I
)
_ASKS_NAME = re.compile(r"^\s*(?:who|whom|whose)\b|\bwho (?:is|was|were|are)\b", re.I)
_ASKS_TERM = re.compile(
    r"\b(call|called|calls|name|named|term|termed|known as|describe[sd]? as|label(?:led)?|"
    r"slogan|phrase|nickname)\b",
    re.I,
)


@dataclass(frozen=True)
class Span:
    """A short answer's offsets inside the sentence it was taken from."""

    start: int
    end: int
    kind: str  # "money", "figure", "date", "name", "term" or "phrase" (read by the reader)


@lru_cache(maxsize=4096)
def asked_type(question: str) -> str | None:
    """The kind of fact a question asks for, or None when its wording does not say."""
    if _ASKS_DATE.search(question):
        return "date"
    if _ASKS_MONEY.search(question):
        return "money"
    if _ASKS_FIGURE.search(question):
        return "figure"
    if _ASKS_NAME.search(question):
        return "name"
    if _ASKS_TERM.search(question):
        return "term"
    return None


def _candidates(kind: str, sentence: str) -> list[tuple[int, int]]:
    if kind == "money":
        found = [m.span() for m in FIGURE.finditer(sentence) if MONEY.search(m.group(0))]
    elif kind == "figure":
        days = day_spans(sentence)
        found = [
            m.span()
            for m in FIGURE.finditer(sentence)
            if not _is_year(m.group(0).rstrip(",")) and not no_count(sentence, _digit(m), days)
        ]
    elif kind == "date":
        found = [m.span() for m in DATE.finditer(sentence)]
    elif kind == "term":
        found = [m.span(1) for m in _QUOTED.finditer(sentence)]
        found += [m.span(1) for m in _NAMED_AS.finditer(sentence)]
    else:
        days = day_spans(sentence)
        found = [
            m.span()
            for m in _NAME.finditer(sentence)
            if (m.start() > 0 or " " in m.group(0))
            and m.group(0).rstrip(".") not in _CALENDAR
            and not any(s <= m.start() < e for s, e in days)  # "May" in "28 May 1858"
        ]
    return [(s, e) for s, e in found if sentence[s:e].strip()]


# What a figure counts or measures. "How many tonnes" is not answered by "10 billion euros",
# nor "how many peacekeepers" by "44 days": a figure whose unit is of another kind than the
# one the question names is not the figure asked for (set from the meaning of the words).
_UNIT_KINDS = {
    "time": "years year months month weeks week days day hours hour minutes decades decade",
    "length": "km kilometres kilometers kilometre kilometer metres meters metre meter miles mile",
    # "cubic metres" is a volume and "square kilometres" an area: see _unit_kind.
    "area": "km² hectares hectare acres",
    "mass": "tonnes tonne tons ton mt",
    "volume": "bcm m³ barrels barrel litres liters",
    # The currencies of _CURRENCY, but "pounds": "how many pounds" asks for a weight.
    "money": "dollars dollar euros euro yuan renminbi roubles rouble rubles ruble francs franc "
    "kroner krone kronor krona yen rupees rupee pesos peso lira lire zloty forints reais "
    "shekels dinars dirhams riyals tenge somoni hryvnia hryvnias $ € £ ¥ ₹ ₽ ₩",
    "share": "% percent percentage",
    "people": "people persons personnel troops soldiers servicemen citizens inhabitants "
    "residents workers students tourists visitors migrants peacekeepers refugees",
}
_KIND_OF = {w: kind for kind, ws in _UNIT_KINDS.items() for w in ws.split()}
_ASKED_UNIT = re.compile(r"\bhow (?:many|much)\s+((?:[\w’'-]+\s+){0,2}[\w’'-]+)", re.I)


def _unit_kind(text: str) -> str | None:
    """The kind of the first unit word in `text` ("square kilometres" is an area)."""
    lowered = text.lower().replace("per cent", "percent")
    if re.search(r"\bsquare (?:kilomet|met|mile|km)|km²", lowered):
        return "area"
    if re.search(r"\bcubic (?:met|km)", lowered):
        return "volume"
    for token in re.findall(r"[$€£¥₹₽₩%]|[^\W\d_]+²?", lowered):
        if token in _KIND_OF:
            return _KIND_OF[token]
    return None


def asked_unit(question: str) -> str | None:
    """The kind of unit a "how many/much" question names ("how many tonnes": mass), or None."""
    m = _ASKED_UNIT.search(question)
    return _unit_kind(m.group(1)) if m else None


def _figure_kind(sentence: str, start: int, end: int) -> str | None:
    """The kind of unit a figure carries: in its span or in the two words after it."""
    after = sentence[end:].split()[:2]
    if after and after[0].lower() in ("a", "per", "each", "every"):
        after = []  # "1,000 a day" is a count of something else, at a rate
    return _unit_kind(sentence[start:end]) or _unit_kind(" ".join(after))


def _of_unit(sentence: str, spans: list[tuple[int, int]], unit: str | None) -> list:
    """The figures that can be of the asked `unit`: of that kind or of no stated kind."""
    if unit is None:
        return spans
    return [(s, e) for s, e in spans if _figure_kind(sentence, s, e) in (None, unit)]


def figure_fits(question: str, sentence: str) -> bool:
    """Whether the sentence holds a figure that can be the one asked for: any figure when the
    question names no unit, else one of that kind or of no stated kind."""
    return bool(_of_unit(sentence, _candidates("figure", sentence), asked_unit(question)))


def _digit(m: re.Match[str]) -> int:
    """Where a figure's number starts ("about 40" starts at 4)."""
    found = re.search(r"\d", m.group(0))
    return m.start() + (found.start() if found else 0)


def _is_year(text: str) -> bool:
    return bool(re.fullmatch(r"(?:in |since )?(?:1[5-9]\d\d|20\d\d)s?", text.strip(), re.I))


def _question_stems(question: str) -> set[str]:
    return {stem(w) for w in words(question) if w not in STOPWORDS and len(w) > 1}


def has_asked_fact(question: str, sentence: str) -> bool | None:
    """Whether a sentence holds the kind of fact the question asks for (None: no kind asked)."""
    kind = asked_type(question)
    if kind is None:
        return None
    return extract(question, sentence) is not None


def extract(question: str, sentence: str) -> Span | None:
    """The short answer to `question` inside `sentence`, or None."""
    kind = asked_type(question)
    if kind is None:
        return None
    spans = _candidates(kind, sentence)
    if kind == "figure":
        spans = _of_unit(sentence, spans, asked_unit(question))
    if kind == "money" and not spans:
        return None
    asked = _question_stems(question)
    lowered_question = question.lower()
    scored: list[tuple[float, int, int]] = []
    for start, end in spans:
        text = sentence[start:end]
        inside = {stem(w) for w in words(text)}
        if inside and inside <= asked:
            continue  # the question's own words are not its answer
        if kind in ("name", "term") and text.lower() in lowered_question:
            continue
        # Nearest to the question's words in the sentence wins: "... trade ... $240 billion".
        positions = [
            m.start()
            for m in re.finditer(r"\w+", sentence)
            if stem(m.group(0).lower()) in asked and not start <= m.start() < end
        ]
        distance = min((abs(p - start) for p in positions), default=len(sentence))
        if inside & asked:
            distance = 0  # "how many troops": "300,000 troops" names what was asked
        scored.append((distance, start, end))
    if not scored:
        return None
    _, start, end = min(scored)
    start, end = trim(sentence, start, end)
    return Span(start, end, kind) if end > start else None


def trim(sentence: str, start: int, end: int) -> tuple[int, int]:
    while end > start and sentence[end - 1] in " ,.;:":
        end -= 1
    while start < end and sentence[start] == " ":
        start += 1
    return start, end
