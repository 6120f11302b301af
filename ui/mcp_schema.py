"""The shapes the MCP tools (ui/mcp_server.py) take and return. Each result holds exactly what
the matching `assistant ... --json` command prints: the models name and describe the fields
for a client's schema, and keep any field they do not name (extra="allow")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _absent(value: object) -> bool:
    return value is None


class NoteOut(_Open):
    """A source brief that qualifies, contradicts or confirms the cited sentence."""

    heading: str
    verdict: str
    public_record: str
    brief_id: str
    brief_title: str


class CitationOut(_Open):
    """Reference [n]: the exact characters of a document that a sentence of the answer quotes."""

    n: int = Field(description="The number of the [n] marker in the answer text.")
    passage_id: str = Field(description="Look the passage up in context with the `show` tool.")
    doc_id: str
    title: str
    url: str
    kind: str = Field(description='"article" or "source".')
    section: str
    start: int = Field(description="Character offset of the quote in its document.")
    end: int
    quote: str = Field(description="The document's text from start to end, exactly.")
    passage_start: int
    passage_end: int
    current_to: str | None = None
    note: NoteOut | None = None
    page: int | None = Field(
        None, exclude_if=_absent, description="The PDF page (from 1); only for PDFs."
    )


class ShortAnswerOut(_Open):
    """The figure, date, name or phrase that answers the question, inside citation [n]."""

    text: str
    n: int
    passage_id: str
    doc_id: str
    start: int
    end: int
    kind: str


class SentenceOut(_Open):
    """One sentence of the answer with its citation numbers and how well they support it."""

    text: str
    citations: list[int]
    support: float | None = None
    supported: bool = True


class RetrievedOut(_Open):
    """A retrieved passage, best first, with its scores."""

    passage_id: str
    doc_id: str
    title: str
    kind: str
    section: str
    score: float
    fused_score: float | None = None
    dense_score: float | None = None
    bm25_score: float | None = None
    sentence_score: float | None = None
    start: int
    end: int
    text: str


class AskResult(_Open):
    """The answer, as `assistant ask --json` prints it."""

    question: str
    answer: str = Field(description="The answer text; each sentence ends with [n] markers.")
    abstained: bool = Field(
        description="True when the sources do not answer the question; the closest passages "
        "are listed instead."
    )
    citations: list[CitationOut]
    sentences: list[SentenceOut]
    mode: str = Field(description='"extractive" or "llm".')
    short_answer: ShortAnswerOut | None
    confidence: float | None
    strength: float | None = Field(
        None, description="Calibrated probability that the answer is right; null if abstained."
    )
    strength_label: str | None = Field(None, description='"strong", "moderate" or "weak".')
    note: str | None = Field(None, exclude_if=_absent)
    standalone_question: str | None = Field(
        None,
        exclude_if=_absent,
        description="The follow-up as it was searched for, when the history changed it.",
    )
    passages: list[RetrievedOut] = Field(description="The passages retrieved, best first.")
    timings_ms: dict[str, float]


class EarlierTurn(_Open):
    """An earlier exchange: the question and the answer given. An earlier `ask` result can be
    passed back unchanged; with its citations, the sentences already quoted rank lower, as
    they do in `assistant chat`."""

    model_config = ConfigDict(extra="ignore")

    question: str
    answer: str = Field("", max_length=20000)
    citations: list[CitationOut] = Field(default_factory=list, max_length=100)


class Message(_Open):
    """A chat message: a user's question, or the assistant's answer to the message before."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20000)


class CitedPassage(_Open):
    """A passage and how well it supports the claim (0..1), best supported first."""

    passage_id: str
    doc_id: str
    title: str
    support: float
    supports: bool = Field(description="Whether the support score reaches 0.5.")
    sentence: list[int] | None = Field(
        description="Document offsets [start, end] of the best-matching sentence."
    )
    quote: str | None = Field(description="That sentence, exactly as in the document.")
    text: str


class CiteResult(_Open):
    """The passages that support a claim, as `assistant cite --json` prints them."""

    claim: str
    passages: list[CitedPassage]


class DocumentOut(_Open):
    """A document's metadata."""

    id: str
    title: str
    file: str
    kind: str = Field(description='"article" or "source".')
    author: str
    publisher: str
    date: str
    url: str
    license: str
    references: list[str]
    current_to: str


class ShowResult(_Open):
    """A passage in its document, as `assistant show --json` prints it."""

    id: str
    doc_id: str
    start: int = Field(description="Character offset of the passage in its document.")
    end: int
    text: str
    section: str
    ordinal: int
    sentences: list[list[int]] = Field(description="Document offsets of each sentence.")
    page: int | None = Field(None, description="The PDF page (from 1) it starts on; null else.")
    document: DocumentOut
    before: str = Field(description="The document's text just before the passage.")
    after: str = Field(description="The document's text just after the passage.")


class SourceOut(DocumentOut):
    """An indexed document with its metadata and size."""

    passages: int
    characters: int


class SourcesResult(_Open):
    """The indexed documents, article first, as `assistant sources --json` lists them."""

    sources: list[SourceOut]
