"""Follow-up questions: telling one from a question that stands on its own, and rewriting it
into one that does, from the turns before it.

Without an LLM, `KeywordRewriter` borrows the salient terms of the earlier turns; an LLM
rewriter can take its place through the `Rewriter` protocol. The answering layer uses this too
(an LLM rewrite is checked against `is_followup`), so it lives below the service and the chat.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.text import QUESTION_WORDS, STOPWORDS
from assistant.types import Answer, Query

_ANAPHORA = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|there|he|she|him|her|his|"
    r"hers|the same|such|the former|the latter|the treaty|the pipeline|the agreement|the "
    r"exercise|the organisation|the organization|the route|the corridor|the project|the deal|"
    r"the report|the memo|the figure|the country|the region)\b",
    re.I,
)
_FOLLOWUP_START = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what about|what else|why|why not|"
    r"who reported|who said|how so|in what way|since when|where else|anything else|more on)\b",
    re.I,
)
_ENTITY = re.compile(r"(?:[A-Z][\w’'-]*|of|the|and)(?:\s+(?:[A-Z][\w’'-]*|of|the|and|\d+))*")


class Rewriter(Protocol):
    """Turns a follow-up into a question that stands on its own."""

    def rewrite(self, question: str, history: list[Turn]) -> Query: ...


# "the treaty" points back; "the Treaty of Aigun" or "the treaty Russia signed in 2001" names.
_NAMED_AFTER = re.compile(r"\s+(?:(?:of|on|between|with)\s+(?:the\s+)?)?[A-Z0-9]")


def _pointer(question: str) -> str | None:
    """The first word the question points back with ("it", "the treaty"), or None."""
    for match in _ANAPHORA.finditer(question):
        word = match.group(0)
        if not word.lower().startswith("the ") or not _NAMED_AFTER.match(question, match.end()):
            return word
    return None


def _points_back(question: str) -> bool:
    return _pointer(question) is not None


def capitalised(question: str) -> list[str]:
    """The capitalised words of a question after its first: the names it gives."""
    return [w for w in re.findall(r"[\w’'-]+", question)[1:] if w[0].isupper()]


def vague_reference(question: str) -> str | None:
    """The word a question points back with ("it" in "When did it start?") when it names
    nothing else to go on: no name and at most two other content words. None otherwise."""
    words = re.findall(r"[\w’'-]+", question)
    pointing = _pointer(question)
    if pointing is None or capitalised(question):
        return None
    pointed = set(pointing.lower().split())
    content = [w for w in words if w.lower() not in STOPWORDS and w.lower() not in pointed]
    return pointing if len(content) <= 2 else None


def nothing_before(pointing: str, earlier: bool = False) -> str:
    """The reply to a question that points back at nothing (`vague_reference`): at the
    start of a conversation, or after turns (`earlier`) that named nothing."""
    said = (
        "Nothing earlier in the conversation names it"
        if earlier
        else "Nothing was asked before this in the conversation"
    )
    return f"What does “{pointing}” refer to? {said}: ask again with the name of what you mean."


def is_followup(question: str) -> bool:
    """Whether a question leans on an earlier turn for its meaning."""
    if _FOLLOWUP_START.search(question) or _points_back(question):
        return True
    words = re.findall(r"[\w’'-]+", question)
    content = [w for w in words if w.lower() not in STOPWORDS]
    return len(content) <= 2 and not capitalised(question)


def salient_terms(text: str) -> list[str]:
    """Multi-word names and content words of a text, in order, each once (case-folded)."""
    out: list[str] = []
    seen: set[str] = set()
    for match in _ENTITY.finditer(text):
        phrase = match.group(0).strip()
        phrase = re.sub(r"^(?:(?:of|the|and)\s+)+|(?:\s+(?:of|the|and))+$", "", phrase)
        words = phrase.split()
        if not words or (len(words) == 1 and words[0].lower() in STOPWORDS | QUESTION_WORDS):
            continue
        if match.start() == 0 and len(words) == 1:
            continue  # a capitalised first word is usually just the start of the sentence
        key = phrase.lower()
        if key not in seen:
            seen.add(key)
            out.append(phrase)
    for word in re.findall(r"[\w’'-]+", text):
        key = word.lower()
        if key in STOPWORDS or key in QUESTION_WORDS or len(key) < 3 or key in seen:
            continue
        if any(key in s.lower().split() for s in out):
            continue
        seen.add(key)
        out.append(word)
    return out


class KeywordRewriter:
    """Adds the previous turn's salient terms to a follow-up (no LLM needed)."""

    def __init__(self, max_terms: int = 6) -> None:
        self.max_terms = max_terms

    def rewrite(self, question: str, history: list[Turn]) -> Query:
        if not history or not is_followup(question):
            return Query(question)
        # The topic is set by the last question that stood on its own; later follow-ups add
        # only the names they brought in ("What about Central Asia?").
        # A turn asked inside one chosen document is about it (its title was searched with
        # it), so it sets the topic too.
        anchor = max(
            (i for i, t in enumerate(history) if t.standalone == t.question or _one_document(t)),
            default=0,
        )
        context = salient_terms(history[anchor].standalone)
        for turn in history[anchor + 1 :]:
            context += [t for t in salient_terms(turn.question) if t[0].isupper()]
        present = question.lower()
        extra: list[str] = []
        for term in context:
            if term.lower() not in present and term.lower() not in (e.lower() for e in extra):
                extra.append(term)
            if len(extra) >= self.max_terms:
                break
        return Query(question, tuple(extra))


def _one_document(turn: Turn) -> bool:
    return len(turn.answer.scope.docs) == 1 and not turn.answer.scope.kinds


@dataclass
class Turn:
    """One exchange: what the user asked, what was searched for, and the cited answer."""

    question: str
    standalone: str
    answer: Answer
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone": self.standalone,
            "at": self.at,
            "answer": self.answer.to_dict(include_passages=False),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        answer = Answer.from_dict(data["answer"])
        return cls(data["question"], data["standalone"], answer, data.get("at", 0.0))
