"""The extractive answerer: composes one to three cited sentences from the scored sentences of
the retrieved passages, or abstains when the evidence is too weak."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from assistant.answer_model import AnswerModel, features
from assistant.config import AnswerSettings
from assistant.names import unmentioned
from assistant.reader import SpanReader
from assistant.rerank import ARTICLE_WORDS, MONTHS, QUANTITY, TIME, YEAR, Candidate, quantities
from assistant.shortanswer import (
    MONEY,
    Span,
    asked_type,
    extract,
    figure_fits,
    has_asked_fact,
    trim,
)
from assistant.strength import load_calibration
from assistant.text import split_sentences, terms
from assistant.types import (
    NOT_GIVEN,
    Answer,
    AnswerSentence,
    Citation,
    Passage,
    Query,
    ScoredPassage,
    ShortAnswer,
    StoredDocument,
)
from assistant.undisclosed import unknown_sentence

NO_ANSWER = "The sources I have do not answer this question."
# How many of the best-ranked sentences are looked at for one that says so.
UNKNOWN_DEPTH = 20
# The reader's span opens the answer when its probability is at least READ_MIN_PROBABILITY
# and it is at most READ_MAX_SHARE of the sentence (a span as long as the sentence is no short
# answer); below that the typed extraction may still find one. The floor is the lowest at
# which the spans shown are exactly right at least seven times in ten, out of fold on the SQuAD
# training articles (assistant/models/answer_reader.json: 0.715 at 0.45, 0.686 at 0.4); there
# the spans just above it are right about half the time, as likely right as wrong. Never
# chosen on the gold set. Where both find a span the reader's is the better (0.62 exact match
# against 0.50), so it comes first.
READ_MIN_PROBABILITY = 0.45
READ_MAX_SHARE = 0.6


class ExtractiveAnswerer:
    """Quotes the sentence most likely to answer, opening with the short answer inside it when
    there is one; abstains when no sentence is likely enough to answer (the learned answer
    model, see answer_model.py) or when the question names something the chosen passage never
    mentions. More sentences are added only when the question needs them: it asks two things,
    or names something the first passage lacks, or the model is nearly as sure of another
    sentence (AnswerSettings.extra_min_share)."""

    def __init__(
        self,
        settings: AnswerSettings,
        model: AnswerModel | None = None,
        idf: Callable[[str], float] | None = None,
        context_terms: Callable[[Candidate], set[str]] | None = None,
        reader: SpanReader | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.idf = idf
        self.context_terms = context_terms
        self.reader = reader

    @staticmethod
    def pool(fitting: list[Candidate], size: int, asked: str) -> list[Candidate]:
        """The candidates the model chooses among: the reranker's best `size`, and up to `size`
        lower-ranked ones that hold the kind of fact the question (the user's `asked` words)
        asks for."""
        top = fitting[:size]
        if asked_type(asked) is not None:
            extra = [c for c in fitting[size:] if has_asked_fact(asked, c.text)]
            top += extra[:size]
        return top

    def choose(
        self, query: Query, fitting: list[Candidate]
    ) -> tuple[Candidate, float | None, dict[int, float]]:
        """The candidate to quote, the model's probability that it answers (None without a
        model: then the reranker's best), and the probability of each candidate it scored
        (by `id`)."""
        if self.model is None or self.idf is None or self.context_terms is None:
            return fitting[0], None, {}
        top = self.pool(fitting, self.settings.model_candidates, query.text)
        if asked_type(query.text) == "term":
            # "What do they call it?" is answered by a sentence that names something in
            # quotes when one of the candidates does (set by hand on the gold dev split).
            top = [c for c in top if has_asked_fact(query.text, c.text)] or top
        # The model was fitted on the question as searched, borrowed terms included.
        rows = features(query.standalone, top, self.idf, self.context_terms)
        probs = self.model.probabilities(rows)
        # A just-quoted sentence (a follow-up's `avoid`) keeps its lower rank among equals.
        best = int(np.argmax(probs))
        return (
            top[best],
            float(probs[best]),
            {id(c): float(p) for c, p in zip(top, probs, strict=True)},
        )

    def answer(
        self,
        query: Query,
        candidates: list[Candidate],
        passages: list[ScoredPassage],
        docs: dict[str, StoredDocument],
    ) -> Answer:
        settings = self.settings
        question = query.text  # the user's own words: what is asked and about which names
        fitting = [c for c in candidates if fits_question(question, c.text)]
        # Ranking a just-quoted sentence lower must not turn a follow-up into an abstention.
        # With the answer model, its threshold decides; min_score guards the path without it.
        floor = settings.min_score if self.model is None else settings.model_min_score
        if not fitting or fitting[0].score + fitting[0].repeat_penalty < floor:
            return not_given(query, candidates, passages, docs)
        best, confidence, probabilities = self.choose(query, fitting)
        if confidence is not None and self.model is not None and confidence < self.model.threshold:
            answer = not_given(query, candidates, passages, docs)
            answer.confidence = confidence
            return answer
        chosen = [best]
        # Whether a sentence adds to the answer is judged on its score before the reader's
        # share (the cutoff was set on that scale; the reader says how likely each sentence
        # answers, not whether the question needs more than one).
        floor = max(settings.min_score, (best.score - best.read) * settings.relative_cutoff)
        # With the model, a question that asks one thing gets another sentence only while the
        # model is nearly as sure of it as of the chosen one (`extra_min_share`); a sentence
        # it did not score (outside its pool: ranked below it, or naming nothing when the
        # question asks what something is called) is not added.
        likely = 0.0 if asks_several(question) else (confidence or 0.0) * settings.extra_min_share
        for cand in fitting:
            if len(chosen) >= settings.max_sentences:
                break
            if cand is best or cand.score - cand.read < floor:
                continue
            if probabilities.get(id(cand), 0.0) < likely:  # likely is 0 without the model
                continue
            if not any(_redundant(cand, c) for c in chosen):
                chosen.append(cand)
        # A question that combines things (a name the first passages lack, or "the article"
        # beside the background) gets one more sentence that covers what is missing.
        relaxed = settings.min_score * 0.9
        for need in _needs(question, chosen, docs):
            extra = next(
                (c for c in fitting if c.score >= relaxed and c not in chosen and need(c)), None
            )
            if extra is not None:
                chosen = [*chosen[: settings.max_sentences + 1], extra]
        if missing_entities(question, [c.passage.passage for c in chosen], docs):
            return not_given(query, candidates, passages, docs)
        answer = compose(query, chosen, passages, docs, self.reader)
        answer.confidence = confidence
        answer.strength = self.strength(confidence)
        return answer

    def strength(self, confidence: float | None) -> float | None:
        """The calibrated probability that the answer is right (strength.py); None without a
        model, or when the shipped calibration was fitted for another model."""
        if confidence is None or self.model is None:
            return None
        calibration = load_calibration()
        if calibration is None or calibration.model != self.model.fingerprint:
            return None
        return calibration.apply(confidence)


def _needs(
    question: str, chosen: list[Candidate], docs: dict[str, StoredDocument]
) -> list[Callable[[Candidate], bool]]:
    """Tests for the sentences an answer still lacks, one per missing piece."""
    needs: list[Callable[[Candidate], bool]] = []
    missing = missing_entities(question, [c.passage.passage for c in chosen], docs)
    if missing:
        needs.append(
            lambda c: (
                not missing_entities(question, [x.passage.passage for x in [*chosen, c]], docs)
            )
        )

    def kind(c: Candidate) -> str:
        doc = docs.get(c.passage.passage.doc_id)
        return doc.meta.kind if doc else "source"

    if ARTICLE_WORDS.search(question) and all(kind(c) != "article" for c in chosen):
        needs.append(lambda c: kind(c) == "article")
    return needs


_SECOND_ASK = re.compile(
    r"(?:[,;…]\s*|\s+)and\s+(?:(?:in|for|at|on|from|to|by|with|since|until)\s+)?"
    r"(?:what|who|whom|whose|when|where|which|how|why|did|does|do|is|was|are|were|has|have|had|"
    r"can|will)\b",
    re.I,
)


def asks_several(question: str) -> bool:
    """Whether a question asks two things: "…, and when did it open?", two questions, or a
    question after a statement of four words or more ("The article mentions the Treaty of
    Aigun. What territory did it give Russia?" asks what the article says and what the treaty
    did; "Thanks. When did it open?" asks one thing)."""
    text = question.strip()
    leading = [text[a:b] for a, b in split_sentences(text)[:-1]]
    if any(s.endswith("?") or len(s.split()) >= 4 for s in leading):
        return True
    return bool(_SECOND_ASK.search(text))


@lru_cache(maxsize=4096)
def _wants(question: str) -> tuple[bool, bool, bool]:
    """Whether a question asks how many, how much money, and when (read once per question)."""
    return (
        bool(QUANTITY.search(question)),
        asked_type(question) == "money",
        bool(TIME.search(question)),
    )


def fits_question(question: str, sentence: str) -> bool:
    """A question asking how many or when needs a figure or a date in its answer."""
    number, money, time = _wants(question)
    if number and not (quantities(sentence) and figure_fits(question, sentence)):
        return False
    if money and not MONEY.search(sentence):
        return False  # "how much did it cost" is not answered by a count of troops
    return not (time and not (YEAR.search(sentence) or MONTHS.search(sentence)))


def missing_entities(
    question: str, passages: list[Passage], docs: dict[str, StoredDocument]
) -> list[str]:
    """Names and years in the question that none of the answer's passages mention."""
    return unmentioned(
        question,
        " ".join(
            f"{docs[p.doc_id].meta.title if p.doc_id in docs else ''} {p.section} {p.text}"
            for p in passages
        ),
    )


def _redundant(a: Candidate, b: Candidate) -> bool:
    if a.vector is not None and b.vector is not None and float(a.vector @ b.vector) > 0.95:
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
        current_to=(meta.current_to or None) if meta else None,
        page=doc.page(start) if doc else None,
    )


def compose(
    query: Query,
    chosen: list[Candidate],
    passages: list[ScoredPassage],
    docs: dict[str, StoredDocument],
    reader: SpanReader | None = None,
) -> Answer:
    """The answer text from chosen sentences, each followed by its citation marker, opening
    with the short answer inside the first when there is one."""
    citations = []
    sentences = []
    for n, cand in enumerate(chosen, start=1):
        p = cand.passage.passage
        citations.append(make_citation(n, p, cand.span, docs.get(p.doc_id)))
        text = " ".join(cand.text.split())
        sentences.append(AnswerSentence(text=text, citations=[n], support=1.0, supported=True))
    text = " ".join(f"{s.text} [{s.citations[0]}]" for s in sentences)
    short = short_answer(query.text, chosen[0], citations[0].n, reader) if chosen else None
    if short is not None and _names_the_subject(short.text, query.borrowed):
        short = None  # "Who signed it? (the 2001 Treaty)" is not answered by "the 2001 Treaty"
    if short is not None:
        text = f"**{short.text}** — {text}"
    return Answer(
        question=query.standalone,
        text=text,
        abstained=False,
        sentences=sentences,
        citations=citations,
        passages=passages,
        short_answer=short,
    )


def _names_the_subject(span: str, borrowed: tuple[str, ...]) -> bool:
    """Whether a short answer only repeats what a follow-up is about (the terms it borrowed
    from earlier turns): a question's own subject is not its answer."""
    inside = set(terms(span))
    return bool(inside) and inside <= {t for b in borrowed for t in terms(b)}


def short_answer(
    question: str, cand: Candidate, n: int, reader: SpanReader | None = None
) -> ShortAnswer | None:
    """The short answer inside a quoted sentence, with its document offsets: the reader's span
    (reader.py) when it is sure enough of one that is shorter than the sentence, else the fact
    of the kind the question's wording asks for (shortanswer.py)."""
    span = _read(reader, question, cand.text) or extract(question, cand.text)
    if span is None:
        return None
    start = cand.span[0] + span.start
    end = cand.span[0] + span.end
    p = cand.passage.passage
    return ShortAnswer(
        text=cand.text[span.start : span.end],
        n=n,
        passage_id=p.id,
        doc_id=p.doc_id,
        start=start,
        end=end,
        kind=span.kind,
    )


def _read(reader: SpanReader | None, question: str, sentence: str) -> Span | None:
    read = reader.read(question, sentence) if reader is not None else None
    if read is None or read.probability < READ_MIN_PROBABILITY:
        return None
    start, end = trim(sentence, read.start, read.end)
    if end <= start or end - start > READ_MAX_SHARE * len(sentence.strip()):
        return None
    return Span(start, end, asked_type(question) or "phrase")


def not_given(
    query: Query,
    candidates: list[Candidate],
    passages: list[ScoredPassage],
    docs: dict[str, StoredDocument],
) -> Answer:
    """The abstention, quoting the sentence that says what was asked is not known or not public
    when the sources hold one about the names the question is about (undisclosed.py)."""
    question = query.text
    said = unknown_sentence(
        question,
        candidates[:UNKNOWN_DEPTH],
        lambda c: not missing_entities(question, [c.passage.passage], docs),
    )
    if said is None:
        return abstention(query.standalone, passages)
    answer = compose(query, [said], passages, docs)
    answer.short_answer = None
    answer.abstained = True
    answer.text = f"{NOT_GIVEN} {answer.sentences[0].text} [1]"
    return answer


def abstention(question: str, passages: list[ScoredPassage], note: str = "") -> Answer:
    """The answer that says the sources do not answer, listing the closest passages as leads."""
    return Answer(question=question, text=NO_ANSWER, abstained=True, passages=passages, note=note)
