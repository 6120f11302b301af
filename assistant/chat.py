"""Multi-turn conversations: history, follow-up resolution, export.

Follow-ups ("When was it signed?", "What about Central Asia?") are rewritten into standalone
questions before retrieval. Without an LLM, `KeywordRewriter` adds the salient terms of the
previous turn; an LLM rewriter can take its place through the `Rewriter` protocol.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.api import Assistant
from assistant.text import QUESTION_WORDS, STOPWORDS, own_words
from assistant.types import Answer

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

    def rewrite(self, question: str, history: list[Turn]) -> str: ...


def is_followup(question: str) -> bool:
    """Whether a question leans on an earlier turn for its meaning."""
    if _FOLLOWUP_START.search(question) or _ANAPHORA.search(question):
        return True
    words = re.findall(r"[\w’'-]+", question)
    content = [w for w in words if w.lower() not in STOPWORDS]
    names = [w for w in words[1:] if w[0].isupper()]
    return len(content) <= 2 and not names


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

    def rewrite(self, question: str, history: list[Turn]) -> str:
        if not history or not is_followup(question):
            return question
        # The topic is set by the last question that stood on its own; later follow-ups add
        # only the names they brought in ("What about Central Asia?").
        anchor = max((i for i, t in enumerate(history) if t.standalone == t.question), default=0)
        context = salient_terms(history[anchor].question)
        for turn in history[anchor + 1 :]:
            context += [t for t in salient_terms(own_words(turn.question)) if t[0].isupper()]
        present = question.lower()
        extra: list[str] = []
        for term in context:
            if term.lower() not in present and term.lower() not in (e.lower() for e in extra):
                extra.append(term)
            if len(extra) >= self.max_terms:
                break
        if not extra:
            return question
        return f"{question.rstrip()} ({', '.join(extra)})"


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


class ChatSession:
    """A conversation with the assistant; each session has its own history."""

    def __init__(
        self, assistant: Assistant, rewriter: Rewriter | None = None, session_id: str | None = None
    ) -> None:
        self.assistant = assistant
        self.rewriter: Rewriter = rewriter or assistant.rewriter()
        self.id = session_id or uuid.uuid4().hex[:12]
        self.turns: list[Turn] = []

    def standalone(self, question: str) -> str:
        return self.rewriter.rewrite(question, self.turns)

    def ask(self, question: str, strict: bool = False) -> Answer:
        answer: Answer | None = None
        for event in self.ask_stream(question, strict):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(self, question: str, strict: bool = False) -> Iterator[str | Answer]:
        """The answer to a turn, streamed as `Assistant.ask_stream` streams it; the turn is
        recorded when the verified answer arrives."""
        text = self.assistant.clean(question)
        standalone = self.assistant.clean(self.standalone(text))
        # A follow-up wants something new: the sentences just quoted rank lower.
        avoid = None
        if standalone != text and self.turns:
            avoid = {(c.passage_id, c.start) for c in self.turns[-1].answer.citations}
        for event in self.assistant.ask_stream(standalone, avoid=avoid, strict=strict):
            if isinstance(event, Answer):
                event.question = text
                event.standalone_question = standalone
                self.turns.append(Turn(text, standalone, event))
            yield event

    def reset(self) -> None:
        self.turns = []

    def to_json(self) -> str:
        return json.dumps(
            {"id": self.id, "turns": [t.to_dict() for t in self.turns]},
            ensure_ascii=False,
            indent=1,
        )

    @classmethod
    def from_json(cls, assistant: Assistant, text: str) -> ChatSession:
        data = json.loads(text)
        session = cls(assistant, session_id=data.get("id"))
        session.turns = [Turn.from_dict(t) for t in data.get("turns", [])]
        return session

    def export_markdown(self) -> str:
        """The conversation as Markdown: each answer with numbered references and quotes."""
        lines = ["# Conversation", ""]
        for i, turn in enumerate(self.turns, start=1):
            lines += [f"## {i}. {turn.question}", ""]
            if turn.standalone != turn.question:
                lines += [f"*Searched as:* {turn.standalone}", ""]
            lines += [turn.answer.text, ""]
            for c in turn.answer.citations:
                where = f"{c.title} ({c.kind})" + (f", {c.section}" if c.section else "")
                link = f" <{c.url}>" if c.url else ""
                lines.append(
                    f"[{c.n}] {where}{link} — passage `{c.passage_id}`, characters {c.start}–{c.end}"
                )
                lines.append(f"> {c.quote}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"
