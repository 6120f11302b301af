"""The names a question is about, and whether a text mentions them: a question about a name
that the quoted passages never mention is not answered by them.

A state is also named by its capital or its seat of power ("Moscow" and "the Kremlin" for
Russia): data/state_names.txt lists those names for every UN member state and a few more,
written from general knowledge (not fitted on any question set).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from assistant.text import STOPWORDS, stem

STATE_NAMES = Path(__file__).resolve().parent / "data" / "state_names.txt"


# The common nouns inside names ("Kyrgyz Republic", "Gydan Peninsula", "Winter Games"): a text
# may name the same thing without them, so only the distinctive words count.
_GENERIC_WORDS = """
republic kingdom federation union island islands peninsula sea ocean river lake
mountains province region district oblast krai city port bay gulf strait games cup
summit treaty agreement convention declaration statement bank organisation organization
council ministry department agency corporation company group forum party army navy force
forces base station university institute centre center north south east west northern
southern eastern western central
"""
_GENERIC = frozenset(_GENERIC_WORDS.split())


def question_entities(question: str) -> list[str]:
    """Capitalised words and years in a question (not its first word): the names it is about."""
    tokens = re.findall(r"[A-Za-z][\w'’-]*|\d{4}", question)
    out = []
    for i, tok in enumerate(tokens):
        if tok.isdigit():
            out.append(tok)
            continue
        # "Putin's" names Putin; in "Beijing-based" only the capitalised part is a name.
        tok = re.sub(r"['’]s?$", "", tok)
        for part in re.split(r"[-‐–]", tok) if i > 0 else ():
            if part[:1].isupper() and part.lower() not in STOPWORDS | _GENERIC:
                out.append(part)
    return out


@lru_cache(maxsize=2048)
def fold(text: str) -> str:
    """Lower case without accents: "Beyonce" is a form of "Beyoncé"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def mentioned(word: str, text: str) -> bool:
    """Whether `word` or a form of it ("Russia" for "Russian", "China" for "Chinese") occurs,
    or, for a state, another of its names ("Russia" for "Moscow"). Both are folded."""
    if _form_in(word, text):
        return True
    names = _state_of(word)
    return any(_name_in(n, text, n == names[0]) for n in names)


@lru_cache(maxsize=4096)
def _state_of(word: str) -> tuple[str, ...]:
    """All the names of the state `word` names ("moscow") or is the adjective of
    ("american": America, "austrian": Austria); () when it is no state's."""
    names = _state_names()
    if word in names:
        return names[word]
    for suffix in ("ese", "ian", "ean", "an", "ish", "i"):
        root = word[: -len(suffix)]
        if word.endswith(suffix) and len(root) >= 4:
            for ending in ("ia", "a", "y", "e", ""):
                if root + ending in names:
                    return names[root + ending]
    return ()


def _form_in(word: str, text: str) -> bool:
    """Whether `word`, or its stem or root ("russia" of "russian"), starts a word of `text`:
    "oman" is not in "woman", nor "putin" in "rasputin"."""
    if _starts_word(word, text):
        return True
    parts = [w for w in re.split(r"[-‐–]", word) if w]
    if len(parts) > 1:
        return all(_form_in(w, text) for w in parts)
    if len(stem(word)) >= 4 and _starts_word(stem(word), text):
        return True
    for suffix in ("ese", "ian", "an", "ish", "i"):
        root = word[: -len(suffix)]
        if word.endswith(suffix) and len(root) >= 4 and _starts_word(root, text):
            return True
    return False


def _starts_word(form: str, text: str) -> bool:
    """Whether `form` occurs in `text` where no letter or digit comes before it."""
    at = text.find(form)
    while at >= 0:
        if at == 0 or not text[at - 1].isalnum():
            return True
        at = text.find(form, at + 1)
    return False


def _name_in(name: str, text: str, country: bool = False) -> bool:
    """Whether a state's name stands in `text` as a word; a country's common name (the first
    of its line) also by its adjective: "china" by "chinese", "russia" by "russian"."""
    return _name_pattern(name, country).search(text) is not None


@lru_cache(maxsize=4096)
def _name_pattern(name: str, country: bool) -> re.Pattern[str]:
    forms = re.escape(name)
    if country and len(name) > 4:
        forms += f"|{re.escape(name[:-1])}(?:a|e|ia|n|an|ian|ean|ese|ish|i)"
    return re.compile(rf"(?<!\w)(?:{forms})(?!\w)")


# Names that fold to everyday English words ("US" -> "us", "Malé" -> "male").
_WORDS = frozenset(["us", "male"])


@lru_cache(maxsize=1)
def _state_names() -> dict[str, tuple[str, ...]]:
    """Each name of a state (folded) -> all the names of that state (folded). Names
    that are common words are left out: they would be found everywhere."""
    try:
        lines = STATE_NAMES.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for line in lines:
        folded = (fold(x.strip()) for x in line.split("|"))
        names = tuple(n for n in folded if n and n not in STOPWORDS and n not in _WORDS)
        for name in names:
            out[name] = names
    return out


def unmentioned(question: str, text: str) -> list[str]:
    """The question's names and years that `text` does not mention in any form. A state named
    in several words ("the United States") is one name, mentioned by any of its names."""
    seen = fold(text)
    names = question_entities(question)
    missing = []
    for phrase in dict.fromkeys(m.group(0) for m in _phrases().finditer(fold(question))):
        parts = set(phrase.split())
        names = [n for n in names if fold(n) not in parts]
        group = _state_names()[phrase]
        if not any(_name_in(n, seen, n == group[0]) for n in group):
            missing.append(phrase)
    return [name for name in names if not mentioned(fold(name), seen)] + missing


@lru_cache(maxsize=1)
def _phrases() -> re.Pattern[str]:
    """The states' names of several words, longest first, as one pattern of whole words."""
    phrases = sorted({n for n in _state_names() if " " in n}, key=len, reverse=True)
    return re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, phrases))})(?!\w)")
