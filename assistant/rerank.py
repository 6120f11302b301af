"""Sentence-level reranking: every sentence of the retrieved passages is scored against the
question, and passages are re-ordered by their best sentence.

The same scores drive the extractive answerer, so the passage ranked first is the one the
answer quotes first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.config import RerankSettings
from assistant.text import NUMBER, STOPWORDS, day_spans, no_count, numbers, stem, terms, words
from assistant.types import Passage, Query, ScoredPassage, StoredDocument

QUANTITY = re.compile(
    r"\b(how (many|much|large|big|high|deep|tall|wide|old|heavy|often|expensive)|"
    r"what (percentage|share|proportion|amount|figure|volume|value|number|size)|by how much|"
    r"what (was|is|were|are) (the |its |their )?(population|number|size|area|length|height|"
    r"depth|total|amount|volume|share|percentage|capacity|turnover))\b",
    re.I,
)
TIME = re.compile(r"\b(when|what year|which year|what date|since when|how long ago)\b", re.I)
YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)s?\b")
MONTHS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\b",
    re.I,
)
ARTICLE_WORDS = re.compile(r"\b(the article|the author|the piece|the essay|the writer)\b", re.I)
_ANAPHOR_START = re.compile(
    r"^(it|its|they|their|this|these|that|those|he|she|his|her|there)\b", re.I
)
# Words that say how a question is asked rather than what it is about.
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
        "author",
        "article",
        "piece",
    ]
)

IdfFn = Callable[[str], float]


@dataclass
class Candidate:
    """A sentence of a retrieved passage, scored as an answer to the question."""

    passage: ScoredPassage
    index: int  # sentence index inside the passage
    span: tuple[int, int]  # document offsets
    text: str
    score: float
    vector: np.ndarray | None
    repeat_penalty: float = 0.0  # included in `score`
    similarity: float = 0.0  # cosine of sentence and question
    sentence_terms: float = 0.0  # share of the question's weighted terms in the sentence
    passage_terms: float = 0.0  # ... in its passage, title and section
    read: float = 0.0  # the reader's share of `score` (see `reread`)


class TermBag:
    """The stemmed terms of a text, indexed by their first four letters for prefix matches."""

    __slots__ = ("prefixes", "terms")

    def __init__(self, terms_: set[str]) -> None:
        self.terms = terms_
        self.prefixes: dict[str, list[str]] = {}
        for t in terms_:
            if len(t) >= 4:
                self.prefixes.setdefault(t[:4], []).append(t)

    def __or__(self, other: TermBag) -> TermBag:
        return TermBag(self.terms | other.terms)


def overlap(q_terms: dict[str, float], bag: TermBag) -> float:
    """Weight of the question terms found in a text; a shared prefix of four or more letters
    ("deep"/"deepest", "russia"/"russian") counts for most of an exact match."""
    total = 0.0
    for t, w in q_terms.items():
        if t in bag.terms:
            total += w
        elif len(t) >= 4:
            near = bag.prefixes.get(t[:4])
            if near and any(s.startswith(t) or t.startswith(s) for s in near):
                total += 0.7 * w
    return total


@dataclass
class _Analysed:
    """What the scorer needs of a passage that does not depend on the question."""

    context: TermBag
    sentences: list[TermBag]
    anaphoric: list[bool]
    carried: list[TermBag | None]  # an anaphoric sentence's terms with the sentence before
    has_quantity: list[bool]
    dated: list[bool]
    numbers: list[set[str]]


def quantities(text: str) -> set[str]:
    """Figures in a text that count or measure something: not years ("1,642 metres" is a
    figure, "1642" a year), not the days of dates ("22 March"), not parts of names ("G7",
    "Su-35")."""
    days = day_spans(text)
    out = set()
    for m in NUMBER.finditer(text):
        n = m.group(0).rstrip(",")
        if not YEAR.fullmatch(n) and not no_count(text, m.start(), days):
            out.add(n.replace(",", ""))
    return out


class SentenceScorer:
    """Scores sentences by embedding similarity, weighted shared terms (in the sentence and in
    its passage), and whether the sentence holds the kind of fact the question asks for."""

    def __init__(
        self,
        idf: IdfFn,
        cache: dict[str, Any] | None = None,
        weights: RerankSettings | None = None,
    ) -> None:
        self.idf = idf
        self.cache: dict[str, Any] = {} if cache is None else cache
        self.weights = weights or RerankSettings()

    def analyse(self, passage: Passage, title: str) -> _Analysed:
        """Term sets and fact markers of a passage, computed once per index snapshot."""
        found = self.cache.get(passage.id)
        if found is None:
            texts = passage.sentence_texts()
            bags = [TermBag(set(terms(t))) for t in texts]
            anaphoric = [i > 0 and bool(_ANAPHOR_START.match(t)) for i, t in enumerate(texts)]
            found = _Analysed(
                context=TermBag(set(terms(f"{title} {passage.section} {passage.text}"))),
                sentences=bags,
                anaphoric=anaphoric,
                carried=[bags[i] | bags[i - 1] if a else None for i, a in enumerate(anaphoric)],
                has_quantity=[bool(quantities(t)) for t in texts],
                dated=[bool(YEAR.search(t) or MONTHS.search(t)) for t in texts],
                numbers=[numbers(t) for t in texts],
            )
            self.cache[passage.id] = found
        return found

    def question_terms(self, question: str) -> dict[str, float]:
        out = {}
        for w in words(question):
            if w in STOPWORDS or w in _GENERIC or (len(w) < 2 and not w.isdigit()):
                continue
            t = stem(w)
            out[t] = self.idf(t)
        return out

    def score(
        self,
        query: Query,
        query_vector: np.ndarray,
        passages: list[ScoredPassage],
        sentence_vectors: dict[str, np.ndarray],
        passage_vectors: dict[str, np.ndarray],
        docs: dict[str, StoredDocument],
    ) -> list[Candidate]:
        """Every sentence of the passages, best first; sentences the query avoids (passage id,
        start) lose some score."""
        w = self.weights
        q_terms = self.question_terms(query.standalone)
        q_mass = sum(q_terms.values()) or 1.0
        asked = query.text  # what kind of fact is asked comes from the user's words
        avoid = query.avoid
        wants_number = bool(QUANTITY.search(asked))
        wants_time = bool(TIME.search(asked))
        wants_article = bool(ARTICLE_WORDS.search(asked))
        q_years = set(YEAR.findall(asked))
        out: list[Candidate] = []
        for rank, sp in enumerate(passages):
            p = sp.passage
            doc = docs.get(p.doc_id)
            info = self.analyse(p, doc.meta.title if doc else "")
            lex_p = overlap(q_terms, info.context) / q_mass
            p_vec = passage_vectors.get(p.id)
            sem_p = float(p_vec @ query_vector) if p_vec is not None else 0.0
            vecs = sentence_vectors.get(p.id)
            sims = vecs @ query_vector if vecs is not None else None
            is_article = doc is not None and doc.meta.kind == "article"
            bonus = w.article if wants_article and is_article else 0.0
            base = w.passage * sem_p + w.context * lex_p - w.rank * rank + bonus
            texts = p.sentence_texts()
            for i, span in enumerate(p.sentences):
                lex_s = overlap(q_terms, info.sentences[i]) / q_mass
                carried_bag = info.carried[i]
                if carried_bag is not None:
                    # "It is the deepest lake": what "it" is lives in the sentence before,
                    # whose words count half.
                    carried = overlap(q_terms, carried_bag) / q_mass
                    lex_s += 0.5 * (carried - lex_s)
                sem = float(sims[i]) if sims is not None else 0.0
                score = base + w.sentence * sem + w.terms * lex_s
                if wants_number and not info.has_quantity[i]:
                    score -= w.no_figure
                if wants_time and not info.dated[i]:
                    score -= w.no_date
                if q_years and not q_years & info.numbers[i]:
                    score -= w.wrong_year
                if len(texts[i]) < 25:
                    score -= w.short
                repeat = w.repeat if avoid and (p.id, span[0]) in avoid else 0.0
                vec = vecs[i] if vecs is not None else None
                out.append(
                    Candidate(
                        passage=sp,
                        index=i,
                        span=span,
                        text=texts[i],
                        score=score - repeat,
                        vector=vec,
                        repeat_penalty=repeat,
                        similarity=sem,
                        sentence_terms=lex_s,
                        passage_terms=lex_p,
                    )
                )
        out.sort(key=lambda c: -c.score)
        return out


def reread(
    candidates: list[Candidate], answers: Callable[[str], float], weight: float, depth: int
) -> list[Candidate]:
    """The best `depth` candidates scored again, each gaining `weight` times `answers`: the
    probability that the sentence answers the question, as a model that reads the question
    and the sentence together judges it (the short-answer reader, reader.py). The cosine of
    separately embedded texts misses a paraphrase that such a model catches. Best first."""
    if weight <= 0 or depth <= 0:
        return candidates
    for c in candidates[:depth]:
        c.read = weight * answers(c.text)
        c.score += c.read
    return sorted(candidates, key=lambda c: -c.score)


def rerank(passages: list[ScoredPassage], candidates: list[Candidate]) -> list[ScoredPassage]:
    """Passages ordered by their best sentence, whose score becomes the passage's score (the
    fused retrieval score stays in `fused_score`). Candidates come sorted best first."""
    best: dict[str, float] = {}
    for c in candidates:
        best.setdefault(c.passage.passage.id, c.score)
    for sp in passages:
        sp.fused_score = sp.score
        sp.score = best.get(sp.passage.id, float("-inf"))
    return sorted(passages, key=lambda sp: -sp.score)
