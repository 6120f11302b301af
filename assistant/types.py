"""The data that crosses module borders: documents, passages, citations and answers."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter

from assistant.scope import Lead, Scope
from assistant.strength import strength_label

T = TypeVar("T")


@cache
def _adapter(cls: type[T]) -> TypeAdapter[T]:
    """pydantic's reader and writer for one of these dataclasses, built on first use (about
    2 ms each, kept off every command's start)."""
    return TypeAdapter(cls)


@dataclass(frozen=True)
class Query:
    """A question on its way from the chat down to the answer.

    `text` is what the user asked (a rewriter may replace it with a question that stands on its
    own); `borrowed` holds the terms a follow-up took from earlier turns, which retrieval
    searches for but which are not the user's words (what kind of fact is asked, and which
    names, comes from `text` alone); `avoid` holds (passage id, start offset) of sentences the
    previous turn already quoted, which rank lower; `scope` limits the documents it is
    answered from."""

    text: str
    borrowed: tuple[str, ...] = ()
    avoid: frozenset[tuple[str, int]] = frozenset()
    scope: Scope = field(default_factory=Scope)

    @property
    def standalone(self) -> str:
        """The question as it is searched for: "When was it signed? (Treaty of Aigun)"."""
        if not self.borrowed:
            return self.text
        return f"{self.text.rstrip()} ({', '.join(self.borrowed)})"


@dataclass(frozen=True)
class DocumentMeta:
    """What the manifest (or the file itself) says about one document."""

    id: str
    title: str
    file: str
    kind: str = "source"
    author: str = ""
    publisher: str = ""
    date: str = ""
    url: str = ""
    license: str = ""
    references: tuple[str, ...] = ()
    current_to: str = ""  # "YYYY-MM" or "YYYY-MM-DD": how recent the document's facts are

    def to_dict(self) -> dict[str, Any]:
        return _adapter(DocumentMeta).dump_python(self, mode="json")  # references: a list

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentMeta:
        """Unknown keys are ignored; missing or null references are none."""
        references = data.get("references") or ()
        return _adapter(DocumentMeta).validate_python({**data, "references": references})

    @property
    def byline(self) -> str:
        return self.author or self.publisher


@dataclass(frozen=True)
class Heading:
    """A heading line inside a document's text."""

    start: int
    end: int
    level: int
    text: str


@dataclass(frozen=True)
class ExtractedText:
    """A document's plain text as a loader produced it, with its headings and anything the
    loader had to work around (a legacy encoding, say)."""

    text: str
    title: str | None
    headings: tuple[Heading, ...] = ()
    warnings: tuple[str, ...] = ()
    pages: tuple[int, ...] = ()  # a PDF's page starts: the offset where each page's text begins
    # What the file says of itself (a Markdown file's front matter): ("author", "Jane Doe"), ...
    about: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Passage:
    """A retrievable span of a document: `document_text[start:end] == text`."""

    id: str
    doc_id: str
    start: int
    end: int
    text: str
    section: str
    ordinal: int
    sentences: tuple[tuple[int, int], ...]  # document offsets of each sentence

    def sentence_texts(self) -> list[str]:
        return [self.text[s - self.start : e - self.start] for s, e in self.sentences]

    def to_dict(self) -> dict[str, Any]:
        return _adapter(Passage).dump_python(self, mode="json")  # sentences: lists of two

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        return _adapter(Passage).validate_python({"section": "", "ordinal": 0, **data})


@dataclass
class ScoredPassage:
    """A retrieved passage with its fused score and the ranks that produced it."""

    passage: Passage
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None
    sentence_score: float | None = None
    sentence_rank: int | None = None
    fused_score: float | None = None
    title: str = ""
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "passage_id": p.id,
            "doc_id": p.doc_id,
            "title": self.title or p.doc_id,
            "kind": self.kind,
            "section": p.section,
            "score": round(self.score, 6),
            "fused_score": None if self.fused_score is None else round(self.fused_score, 6),
            "dense_score": None if self.dense_score is None else round(self.dense_score, 4),
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 4),
            "sentence_score": None
            if self.sentence_score is None
            else round(self.sentence_score, 4),
            "start": p.start,
            "end": p.end,
            "text": p.text,
        }


@dataclass
class CitationNote:
    """A recorded difference between a cited article sentence and a source (corpus/NOTES.md)."""

    heading: str
    verdict: str  # contradicts | qualifies | cannot confirm | confirms; "" when not stated
    public_record: str
    brief_id: str
    brief_title: str

    @property
    def verb(self) -> str:
        """How the source relates to the sentence, as a verb: "qualifies", "contradicts"."""
        return {"cannot confirm": "cannot confirm", "confirms": "confirms"}.get(
            self.verdict, self.verdict or "qualifies"
        )


@dataclass
class Citation:
    """One numbered reference: a sentence-level span of a passage in its source document."""

    n: int
    passage_id: str
    doc_id: str
    title: str
    url: str
    kind: str
    section: str
    start: int
    end: int
    quote: str
    passage_start: int
    passage_end: int
    current_to: str | None = None  # the cited document's "current to" date
    note: CitationNote | None = None  # a source that qualifies the cited sentence
    page: int | None = None  # the PDF page (from 1) where the cited sentence starts

    def to_dict(self) -> dict[str, Any]:
        data = _adapter(Citation).dump_python(self)
        if self.page is None:
            del data["page"]  # only a PDF's citations have one
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        """Unknown keys are ignored; `note` is read back as a CitationNote."""
        return _adapter(Citation).validate_python(data)


@dataclass(frozen=True)
class ShortAnswer:
    """The figure, date, name or phrase that answers a question, inside the sentence cited as
    [n]: `document_text[start:end] == text`."""

    text: str
    n: int
    passage_id: str
    doc_id: str
    start: int
    end: int
    kind: str  # "money", "figure", "date", "name", "term" or "phrase"

    def to_dict(self) -> dict[str, Any]:
        return _adapter(ShortAnswer).dump_python(self)


@dataclass
class AnswerSentence:
    """One sentence of an answer, the citation numbers after it and how well they support it."""

    text: str
    citations: list[int]
    support: float | None = None
    supported: bool = True

    def to_dict(self) -> dict[str, Any]:
        return _adapter(AnswerSentence).dump_python(self)


# How an abstention opens when it quotes the sentence that says the detail asked for is not
# known or not public (assistant/undisclosed.py).
NOT_GIVEN = "The sources do not give this; they say:"


@dataclass
class Answer:
    """What the assistant says, with the sources travelling alongside the text."""

    question: str
    text: str
    abstained: bool
    sentences: list[AnswerSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    passages: list[ScoredPassage] = field(default_factory=list)
    note: str = ""
    mode: str = "extractive"
    standalone_question: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    short_answer: ShortAnswer | None = None
    confidence: float | None = None  # the answer model's probability that the quote answers
    scope: Scope = field(default_factory=Scope)  # the documents it was answered from
    lead: Lead | None = None  # where to look outside the scope when the scope does not say
    strength: float | None = None  # `confidence` calibrated (assistant/strength.py)

    @property
    def strength_label(self) -> str | None:
        """The word for `strength`: strong, moderate or weak; None without a strength."""
        return strength_label(self.strength)

    def citation(self, n: int) -> Citation | None:
        return next((c for c in self.citations if c.n == n), None)

    def to_dict(self, include_passages: bool = True) -> dict[str, Any]:
        """The JSON shape of an answer, as `assistant ask --json` prints it."""
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [s.to_dict() for s in self.sentences],
            "mode": self.mode,
            "short_answer": self.short_answer.to_dict() if self.short_answer else None,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "strength": None if self.strength is None else round(self.strength, 4),
            "strength_label": self.strength_label,
        }
        if self.note:
            data["note"] = self.note
        data.update({k: v.to_dict() for k, v in (("scope", self.scope), ("lead", self.lead)) if v})
        if self.standalone_question and self.standalone_question != self.question:
            data["standalone_question"] = self.standalone_question
        if include_passages:
            data["passages"] = [sp.to_dict() for sp in self.passages]
            data["timings_ms"] = self.timings_ms
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """An answer read back from `to_dict` (retrieved passages are not kept)."""
        return cls(
            question=data["question"],
            text=data["answer"],
            abstained=data["abstained"],
            sentences=[
                _adapter(AnswerSentence).validate_python(s) for s in data.get("sentences", [])
            ],
            citations=[Citation.from_dict(c) for c in data.get("citations", [])],
            note=data.get("note", ""),
            mode=data.get("mode", "extractive"),
            standalone_question=data.get("standalone_question"),
            short_answer=_adapter(ShortAnswer).validate_python(data["short_answer"])
            if data.get("short_answer")
            else None,
            confidence=data.get("confidence"),
            strength=data.get("strength"),
            scope=Scope.from_dict(data.get("scope")),
            lead=Lead.from_dict(data["lead"]) if data.get("lead") else None,
        )


@dataclass
class SupportResult:
    """How well a passage supports a claim, and the passage sentence that matches it best."""

    passage: Passage
    score: float
    sentence: tuple[int, int] | None
    retrieval_score: float = 0.0

    @property
    def quote(self) -> str | None:
        """The best-matching sentence, exactly as in the source."""
        if self.sentence is None:
            return None
        start, end = self.sentence
        return self.passage.text[start - self.passage.start : end - self.passage.start]


@dataclass
class IndexReport:
    """What one indexing run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    passages: int = 0
    embedded: int = 0
    seconds: float = 0.0
    repaired: bool = False  # rebuilt because an interrupted write had left the store unreadable

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class StoredDocument:
    """A document as the index holds it: metadata, the exact text offsets refer to, hash."""

    meta: DocumentMeta
    text: str
    content_hash: str
    passage_ids: list[str] = field(default_factory=list)
    pages: tuple[int, ...] = ()  # a PDF's page starts (ExtractedText.pages); () otherwise

    @property
    def id(self) -> str:
        return self.meta.id

    def page(self, offset: int) -> int | None:
        """The PDF page (from 1) that holds the character at `offset`; None if not a PDF."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None


@dataclass
class PassageContext:
    """A passage inside its document: the text around it, for showing a citation in place."""

    passage: Passage
    document: StoredDocument
    before: str
    after: str


@dataclass
class SourceSummary:
    """A document of the index, as `assistant sources` lists it."""

    document: StoredDocument
    passages: int

    def to_dict(self) -> dict[str, object]:
        return {
            **self.document.meta.to_dict(),
            "passages": self.passages,
            "characters": len(self.document.text),
        }
