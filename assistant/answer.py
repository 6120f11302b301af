"""The extractive answerer: picks the sentences of the retrieved passages that answer the
question, cites each, and abstains when the evidence is too weak."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.config import AnswerSettings
from assistant.store import StoredDocument
from assistant.text import STOPWORDS, numbers, stem, terms, words
from assistant.types import Answer, AnswerSentence, Citation, Passage, ScoredPassage

NO_ANSWER = "The sources I have do not answer this question."

_QUANTITY = re.compile(
    r"\b(how (many|much|large|big|high|far|long|fast|deep|tall|wide|old|heavy|often|expensive)|what (percentage|share|proportion|amount|"
    r"figure|volume|value|number)|by how much)\b",
    re.I,
)
_TIME = re.compile(r"\b(when|what year|which year|what date|since when|how long ago)\b", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b")
_MONTHS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\b",
    re.I,
)
_GENERIC = frozenset(
    [
        "role",
        "relation",
        "relations",
        "relationship",
        "relationships",
        "view",
        "views",
        "impact",
        "effect",
        "effects",
        "argue",
        "argues",
        "argument",
        "claim",
        "claims",
        "mention",
        "mentions",
        "describe",
        "describes",
        "explain",
        "explains",
        "main",
        "key",
        "important",
        "happen",
        "happened",
        "mean",
        "means",
        "think",
        "thinks",
        "know",
    ]
)


_ANAPHOR_START = re.compile(
    r"^(it|its|they|their|this|these|that|those|he|she|his|her|there)\b", re.I
)


def _overlap(q_terms: dict[str, float], s_terms: set[str]) -> float:
    """Weighted share of question terms found in a sentence; a shared prefix of four or more
    letters ("deep"/"deepest", "russia"/"russian") counts for most of an exact match."""
    total = 0.0
    for t, w in q_terms.items():
        if t in s_terms:
            total += w
        elif len(t) >= 4 and any(
            len(s) >= 4 and (s.startswith(t) or t.startswith(s)) for s in s_terms
        ):
            total += 0.7 * w
    return total


@dataclass
class Candidate:
    passage: ScoredPassage
    index: int  # sentence index inside the passage
    span: tuple[int, int]
    text: str
    score: float
    vector: np.ndarray | None


def question_entities(question: str) -> list[str]:
    """Capitalised words and years in a question (not its first word): the names it is about."""
    tokens = re.findall(r"[A-Za-z][\w'’-]*|\d{4}", question)
    out = []
    for i, tok in enumerate(tokens):
        if tok.isdigit() or (i > 0 and tok[0].isupper() and tok.lower() not in STOPWORDS):
            out.append(tok)
    return out


class ExtractiveAnswerer:
    """Composes one to three cited sentences from retrieved passages, or abstains."""

    def __init__(
        self, settings: AnswerSettings, idf: Callable[[str], float], known: Callable[[str], bool]
    ) -> None:
        self.settings = settings
        self.idf = idf
        self.known = known

    def _question_terms(self, question: str) -> dict[str, float]:
        out = {}
        for w in words(question):
            if w in STOPWORDS or w in _GENERIC or (len(w) < 2 and not w.isdigit()):
                continue
            t = stem(w)
            out[t] = self.idf(t)
        return out

    def score_sentences(
        self,
        question: str,
        query_vector: np.ndarray,
        passages: list[ScoredPassage],
        sentence_vectors: dict[str, np.ndarray],
        docs: dict[str, StoredDocument],
    ) -> list[Candidate]:
        """Every sentence of the retrieved passages, scored as an answer to the question."""
        q_terms = self._question_terms(question)
        q_mass = sum(q_terms.values()) or 1.0
        wants_number = bool(_QUANTITY.search(question))
        wants_time = bool(_TIME.search(question))
        q_years = set(_YEAR.findall(question))
        out: list[Candidate] = []
        for rank, sp in enumerate(passages):
            p = sp.passage
            doc = docs.get(p.doc_id)
            context = set(terms(f"{doc.meta.title if doc else ''} {p.section} {p.text}"))
            lex_p = _overlap(q_terms, context) / q_mass
            vecs = sentence_vectors.get(p.id)
            previous: set[str] = set()
            for i, (text, span) in enumerate(zip(p.sentence_texts(), p.sentences, strict=True)):
                s_terms = set(terms(text))
                if _ANAPHOR_START.match(text):
                    # "It is the deepest lake": what "it" is lives in the sentence before.
                    s_terms |= previous
                previous = set(terms(text))
                lex_s = _overlap(q_terms, s_terms) / q_mass
                sem = float(vecs[i] @ query_vector) if vecs is not None else 0.0
                score = 0.55 * sem + 0.25 * lex_s + 0.20 * lex_p - 0.01 * rank
                figures = numbers(text)
                if wants_number and not figures:
                    score -= 0.08
                if wants_time and not (_YEAR.search(text) or _MONTHS.search(text)):
                    score -= 0.08
                if q_years and not q_years & figures:
                    score -= 0.10
                if len(text) < 25:
                    score -= 0.1
                out.append(
                    Candidate(sp, i, span, text, score, vecs[i] if vecs is not None else None)
                )
        out.sort(key=lambda c: -c.score)
        return out

    def answer(
        self,
        question: str,
        query_vector: np.ndarray,
        passages: list[ScoredPassage],
        sentence_vectors: dict[str, np.ndarray],
        docs: dict[str, StoredDocument],
    ) -> Answer:
        candidates = self.score_sentences(question, query_vector, passages, sentence_vectors, docs)
        if not candidates or self._should_abstain(question, candidates[0], passages):
            return abstention(question, passages)
        best = candidates[0]
        chosen = [best]
        floor = max(self.settings.min_score, best.score * self.settings.relative_cutoff)
        for cand in candidates[1:]:
            if len(chosen) >= self.settings.max_sentences or cand.score < floor:
                break
            if any(_redundant(cand, c) for c in chosen):
                continue
            chosen.append(cand)
        return compose(question, chosen, passages, docs)

    def _should_abstain(
        self, question: str, best: Candidate, passages: list[ScoredPassage]
    ) -> bool:
        if best.score < self.settings.min_score:
            return True
        # A name or year the question is about that no retrieved passage mentions.
        seen = " ".join(sp.passage.text for sp in passages).lower()
        for entity in question_entities(question):
            if entity.isdigit():
                if entity not in seen:
                    return True
            elif not self.known(stem(entity.lower())) and entity.lower() not in seen:
                return True
        return False


def _redundant(a: Candidate, b: Candidate) -> bool:
    if a.vector is not None and b.vector is not None and float(a.vector @ b.vector) > 0.9:
        return True
    return a.text.strip() == b.text.strip()


def make_citation(
    n: int, passage: Passage, span: tuple[int, int], doc: StoredDocument | None
) -> Citation:
    """A citation of one sentence (`span`, document offsets) of a passage."""
    start, end = span
    quote = passage.text[start - passage.start : end - passage.start]
    meta = doc.meta if doc else None
    return Citation(
        n=n,
        passage_id=passage.id,
        doc_id=passage.doc_id,
        title=meta.title if meta else passage.doc_id,
        url=meta.url if meta else "",
        kind=meta.kind if meta else "source",
        section=passage.section,
        start=start,
        end=end,
        quote=quote,
        passage_start=passage.start,
        passage_end=passage.end,
    )


def compose(
    question: str,
    chosen: list[Candidate],
    passages: list[ScoredPassage],
    docs: dict[str, StoredDocument],
) -> Answer:
    """The answer text from chosen sentences, each followed by its citation marker."""
    citations = []
    sentences = []
    for n, cand in enumerate(chosen, start=1):
        p = cand.passage.passage
        citations.append(make_citation(n, p, cand.span, docs.get(p.doc_id)))
        text = " ".join(cand.text.split())
        sentences.append(AnswerSentence(text=text, citations=[n], support=1.0, supported=True))
    text = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
    return Answer(
        question=question,
        text=text,
        abstained=False,
        sentences=sentences,
        citations=citations,
        passages=passages,
    )


def abstention(question: str, passages: list[ScoredPassage], note: str = "") -> Answer:
    """The answer that says the sources do not answer, listing the closest passages as leads."""
    return Answer(question=question, text=NO_ANSWER, abstained=True, passages=passages, note=note)
