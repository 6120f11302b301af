"""Text primitives shared by chunking, retrieval, answering and verification.

Sentence spans are character offsets, so every sentence can be cited exactly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

# Words before a period that do not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "adm",
        "gov",
        "sen",
        "rep",
        "pres",
        "inc",
        "ltd",
        "co",
        "corp",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "no",
        "nos",
        "vol",
        "vols",
        "pp",
        "p",
        "fig",
        "figs",
        "approx",
        "est",
        "dept",
        "univ",
        "ave",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "u.s.a",
        "ph.d",
        "a.m",
        "p.m",
        "ca",
        "op",
        "ed",
        "eds",
        "rev",
    ]
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[」』”’)）]*")
_CJK_STOP = frozenset("。！？")
# "am 13. November": a day written as an ordinal (German and other languages), not the end
# of a sentence, when a month's name follows (see _day_of_month).
_ORDINAL_DAY = re.compile(r"(?:3[01]|[12]\d|0?[1-9])")
_GERMAN_BEFORE_DAY = frozenset(
    ["am", "vom", "bis", "zum", "den", "dem", "seit", "ab", "des", "und"]
)
_MONTH_AFTER_DAY = re.compile(
    r"(?:Jan(?:uar|vier|uary)?|Feb(?:ruar|ruary)?|März|Mar(?:ch)?|Apr(?:il)?|Mai|May|"
    r"Jun[ie]?|June|Jul[iy]?|Aug(?:ust)?|Sep(?:tember)?|Okt(?:ober)?|Oct(?:ober)?|"
    r"Nov(?:ember)?|Dez(?:ember)?|Dec(?:ember)?)\b"
)
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]+[\"'”’)\]]*$")
_TOKEN = re.compile(r"\w+", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "does",
        "did",
        "according",
        "article",
        "say",
        "says",
        "said",
        "tell",
        "told",
        "much",
        "many",
    ]
)
QUESTION_WORDS = frozenset(["what", "when", "where", "which", "who", "whom", "whose", "why", "how"])


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Spans (start, end) of the sentences in `text`, shifted by `offset`, whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if match.group(0)[0] not in _CJK_STOP and not _ends_sentence(text, start, end):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s + offset, e + offset))
    return out


def _day_of_month(before: str, rest: str) -> bool:
    """Whether "13." before `rest` is a day written as an ordinal: a month's name follows,
    and a year after it or a German preposition before the day says it is a date ("am 13.
    August", "13. August 1961"), not "counted to 10. March came early"."""
    month = _MONTH_AFTER_DAY.match(rest)
    if not month:
        return False
    if re.match(r"\s+\d{4}\b", rest[month.end() :]):
        return True
    word = re.search(r"(\w+)\s+\d{1,2}\.\s*$", before)
    return word is not None and word.group(1).lower() in _GERMAN_BEFORE_DAY


def _ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether the punctuation run that ends at `end` closes a sentence."""
    rest = text[end:].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    if nxt.islower():  # a capital, digit, quote or a letter of a script without case may start one
        return False
    if nxt in "\"'“‘([" and len(rest) > 1 and rest[1].islower():
        return False
    word = _WORD_BEFORE.search(text[start:end])
    if word:
        w = word.group(1).lower().rstrip(".")
        if w in _ABBREVIATIONS:
            return False
        if _ORDINAL_DAY.fullmatch(w) and _day_of_month(text[:end], rest):
            return False
        before = text[start + word.start() - 1] if start + word.start() > 0 else " "
        # An initial, as in "J. Smith"; not the "s" of a possessive ending a sentence.
        if len(w) == 1 and w.isalpha() and before not in "'’":
            return False
    return True


def normalize_for_match(text: str) -> str:
    """Fold case, quotes, dashes and whitespace so that quotes compare as people read them."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[‘’‚‛′`´]", "'", text)
    text = re.sub(r"[“”„‟″«»]", '"', text)
    text = re.sub(r"[‐‑‒–—―−]", "-", text)
    text = re.sub(r"\s*-\s*", "-", text)
    text = re.sub(r"\s+", " ", text)
    return text.strip().lower()


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    """Lowercased word tokens, possessives dropped."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = re.sub(r"'s\b", "", text)
    return _TOKEN.findall(text)


def terms(text: str) -> list[str]:
    """Stemmed content terms, as both BM25 and the answerer count them."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
# The day of a date ("22 March", "9–10 November", "22nd Mar", "March 22"): part of a date, not
# a count. Months are capitalised: "30 may have died" holds a count.
_MONTH_NAMES = rf"(?:{'|'.join(MONTHS)}|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\b\.?"
_DAY_NUMBER = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
DAY = re.compile(
    rf"\b{_DAY_NUMBER}(?:\s?[-–]\s?{_DAY_NUMBER})?\s(?:of\s)?{_MONTH_NAMES}"
    rf"|\b{_MONTH_NAMES}\s{_DAY_NUMBER}\b"
)
_NAME_BEFORE = re.compile(r"(\S?)\s*\b([A-Z][\w-]*)\s$")
_SMALL_NUMBER = re.compile(r"\d{1,2}(?![\d,%]|\.\d)")
# Capitalised words a count can follow: currency codes, days and months ("USD 24 billion").
_NOT_NAMES = frozenset(
    [*["usd", "eur", "rmb", "cny", "rub", "gbp", "jpy"], *(w.lower() for w in [*MONTHS, *WEEKDAYS])]
)


def day_spans(text: str) -> list[tuple[int, int]]:
    """Where the days of dates stand in `text` (see DAY)."""
    return [m.span() for m in DAY.finditer(text)]


def no_count(text: str, at: int, days: list[tuple[int, int]]) -> bool:
    """Whether the number starting at `at` is the day of a date (one of `days`, from
    day_spans) or part of a name: it counts nothing."""
    return any(s <= at < e for s, e in days) or in_name(text, at)


def in_name(text: str, at: int) -> bool:
    """Whether the figure starting at `at` is part of a name: glued to a word ("G7",
    "Su-35"), or a small number after a capitalised word inside a sentence ("Arctic LNG 2",
    "Power of Siberia 2"; not "Nearly 40 people" at a sentence's start)."""
    before = text[max(0, at - 2) : at]
    if before and (before[-1].isalpha() or (before[-1] in "-‐" and before[:1].isalpha())):
        return True
    name = _NAME_BEFORE.search(text[max(0, at - 40) : at])
    if not name or not _SMALL_NUMBER.match(text, at):
        return False
    opens_sentence = name.group(1) in ("", ".", "!", "?", ":", ";", "(", "\u201c", '"')
    word = name.group(2).lower()
    return not opens_sentence and word not in STOPWORDS and word not in _NOT_NAMES


def numbers(text: str) -> set[str]:
    """Figures mentioned in a text, with separators removed ("240", "2023", "30")."""
    return {n.replace(",", "") for n in NUMBER.findall(text)}


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
