"""The public API: one `Assistant` that the CLI, the web app and the evaluation all call."""

from __future__ import annotations

import difflib
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from cachetools import LRUCache

from assistant.answer import ExtractiveAnswerer
from assistant.answer_model import load_model
from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.errors import IndexStateError, InputError
from assistant.followup import KeywordRewriter
from assistant.llm import GenerativeAnswerer, LLMRewriter, build_llm
from assistant.notes import attach_notes
from assistant.reader import load_reader
from assistant.retrieve import HybridRetriever
from assistant.scope import Lead, Scope, scoped_no_answer
from assistant.search import Search, run_search
from assistant.store import IndexSnapshot, IndexStore, ProgressFactory, no_progress
from assistant.types import (
    Answer,
    IndexReport,
    Passage,
    PassageContext,
    Query,
    ScoredPassage,
    SourceSummary,
    StoredDocument,
    SupportResult,
)
from assistant.verify import Support, support

_UNSET = object()
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


# What to do about an empty or overlong question, or claim to check.
_HINTS = {
    "question": (
        'Ask something, for example: assistant ask "What is the Power of Siberia 2 project?"',
        "Shorten it to the point you want answered.",
    ),
    "claim": (
        'Give a claim to check, for example: assistant cite "China supplies microchips to Russia"',
        "Shorten it to the one statement you want checked.",
    ),
}


def whole_number(name: str, value: object, least: int) -> int:
    """`value` when it is a whole number of at least `least`; InputError otherwise (a
    negative k once returned every passage, a k of "3" failed deep inside)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"{name} must be a whole number of at least {least}, not {value!r}.")
    return value


def as_scope(scope: object) -> Scope:
    """A scope from what a caller passed: a Scope, None (every document), a mapping like
    Scope.to_dict's, or document ids (one as a string, or a list)."""
    if scope is None:
        return Scope()
    if isinstance(scope, Scope):
        return scope
    if isinstance(scope, Mapping):
        return Scope.from_dict(scope)
    if isinstance(scope, str | list | tuple | set | frozenset):
        return Scope.from_dict({"docs": scope})  # strings only, none blank
    raise InputError(
        f"A scope is a Scope, a mapping or document ids, not {type(scope).__name__}.",
        'For example scope=Scope.of(["brics"]) or scope={"kinds": ["article"]}.',
    )


def clean_question(question: str, max_chars: int, what: str = "question") -> str:
    """The question (or the claim to check, `what`) with control characters removed;
    InputError when empty or too long."""
    if question is not None and not isinstance(question, str):
        raise InputError(f"The {what} must be text, not {type(question).__name__}.")
    text = " ".join(_CONTROL.sub(" ", question or "").split())
    empty, overlong = _HINTS[what]
    if not text:
        raise InputError(f"The {what} is empty.", empty)
    if len(text) > max_chars:
        raise InputError(
            f"The {what} is {len(text):,} characters long; the limit is {max_chars:,}.", overlong
        )
    return text


class Assistant:
    """Answers questions from the indexed corpus, with citations; thread-safe for readers."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        llm: Any = None,
    ) -> None:
        """`llm`: a llama-index chat model to use instead of the one `settings` configure."""
        self.settings = settings or Settings()
        self._embedder = embedder
        self.store = IndexStore(self.settings, embedder)
        self._lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        self._retriever: HybridRetriever | None = None
        self._token: tuple[object, ...] | None = None
        self._vectors: LRUCache[str, np.ndarray] = LRUCache(self.settings.retrieval.query_cache)
        self._llm: Any = _UNSET if llm is None else llm

    # -- index ------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        return self.store.embedder

    def index(self, rebuild: bool = False, progress: ProgressFactory = no_progress) -> IndexReport:
        """Bring the index up to date with the corpus (or rebuild it from scratch)."""
        report = self.store.sync(progress=progress, rebuild=rebuild)
        self._snapshot = None
        return report

    def ensure_index(self, progress: ProgressFactory = no_progress) -> IndexReport | None:
        """Build the index when there is none yet, or rebuild it when a writer was killed in
        the middle of a write and left it unreadable; returns the report if it did either."""
        if not self.store.exists():
            return self.index(progress=progress)
        try:
            self.snapshot()
        except IndexStateError:
            if not self.store.interrupted():
                raise  # damage from outside: the message names `assistant index --rebuild`
            report = self.index(rebuild=True, progress=progress)
            report.repaired = True
            return report
        return None

    def _current(self) -> tuple[IndexSnapshot, HybridRetriever]:
        """The loaded index and its retriever, as one pair; reloaded when another process
        has changed the index since."""
        with self._lock:
            generation = self._snapshot.generation if self._snapshot else None
            token = self.store.change_token(generation)
            if self._snapshot is None or self._retriever is None or token != self._token:
                snapshot = self.store.open()
                self._snapshot = snapshot
                self._retriever = HybridRetriever(snapshot, self.settings.retrieval)
                self._token = self.store.change_token(snapshot.generation)
            return self._snapshot, self._retriever

    def snapshot(self) -> IndexSnapshot:
        """The loaded index, reloaded when another process has changed it since."""
        return self._current()[0]

    def retriever(self) -> HybridRetriever:
        return self._current()[1]

    # -- questions --------------------------------------------------------------------------

    def clean(self, question: str, what: str = "question") -> str:
        return clean_question(question, self.settings.answer.max_question_chars, what)

    def embed_query(self, text: str) -> np.ndarray:
        """The question's vector; recent ones are kept, as chat and evals repeat questions."""
        with self._lock:
            cached = self._vectors.get(text)
        if cached is not None:
            return cached
        vector = self.embedder.embed_query(text)
        if self._vectors.maxsize:  # 0 keeps none (the cache would refuse the item)
            with self._lock:
                self._vectors[text] = vector
        return vector

    def query(self, question: str | Query, scope: Scope | None = None) -> Query:
        """A question as the answering layers take it; InputError when empty or too long.
        `scope`, when given, replaces the scope a `Query` carries."""
        if isinstance(question, Query):
            chosen = question.scope if scope is None else as_scope(scope)
            return Query(self.clean(question.text), question.borrowed, question.avoid, chosen)
        return Query(self.clean(question), scope=as_scope(scope))

    def search(
        self, question: str | Query, k: int | None = None, scope: Scope | None = None
    ) -> Search:
        """Retrieve, then rerank by the best sentence of each passage: the passages that best
        match a question, best first, with every sentence scored (within `scope`)."""
        query = self.query(question, scope)
        if k is not None:
            whole_number("k", k, 1)
        _, retriever = self._current()
        return run_search(query, retriever, self.embed_query, self.settings, k)

    def warm_up(self) -> None:
        """Load what a first question needs (the index view, BM25, the question encoder, the
        vectors searched in memory), so that it is answered as fast as the next one."""
        self.search("warm up")

    def retrieve(self, question: str, k: int | None = None) -> list[ScoredPassage]:
        """The passages that best match a question, best first."""
        return self.search(question, k).passages

    def ask(
        self,
        question: str | Query,
        k: int | None = None,
        strict: bool = False,
        scope: Scope | None = None,
    ) -> Answer:
        """A short answer whose every sentence cites the passage it came from, or an abstention.

        A `Query` carries what a follow-up borrowed from earlier turns and the sentences to
        rank lower (see ChatSession). `strict` drops, rather than marks, generated sentences
        the sources do not support. `scope` limits the documents answered from (InputError
        for an id or kind the index does not know)."""
        answer: Answer | None = None
        for event in self.ask_stream(question, k, strict, scope):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str | Query,
        k: int | None = None,
        strict: bool = False,
        scope: Scope | None = None,
    ) -> Iterator[str | Answer]:
        """Like `ask`, but yields the model's text as it is generated (LLM mode), then the
        verified Answer, which always comes last."""
        started = time.perf_counter()
        found = self.search(question, k, scope)
        snapshot = found.retriever.snapshot
        docs = snapshot.docs
        t0 = time.perf_counter()

        def extractive(note: str = "") -> Answer:
            answer = self._extract(found)
            answer.note = note
            return answer

        llm = self.llm()
        selected = extractive()
        if llm is None:
            answer = selected
        elif selected.abstained:
            # The model writes from the same evidence the extractive answer would quote: when
            # the answer model finds none, there is nothing for it to write from.
            answer = selected
            answer.mode = "llm"
            answer.note = "No passage answers the question, so the model was not asked."
        else:
            generator = GenerativeAnswerer(
                llm,
                self.settings,
                self.embedder.embed,
                found.retriever.lexical.idf,
                self.embedder.count_tokens,
                lambda ids: snapshot.vectors(ids)[1],
            )
            answer = extractive("No answer from the model.")
            # The passage the answer model chose goes first: the model reads it as [1].
            chosen = {c.passage_id for c in selected.citations}
            evidence = [sp for sp in found.passages if sp.passage.id in chosen] + [
                sp for sp in found.passages if sp.passage.id not in chosen
            ]
            for event in generator.stream(
                found.query.standalone, evidence, docs, extractive, strict
            ):
                if isinstance(event, Answer):
                    answer = event
                else:
                    yield event
        self._list_cited(answer, found)
        self._scope(answer, found)
        attach_notes(answer, docs, self.settings.corpus_dir)  # corpus/NOTES.md on citations
        t1 = time.perf_counter()
        answer.timings_ms = {
            "embed": round(found.timings_ms["embed"], 2),
            "retrieve": round(found.timings_ms["retrieve"], 2),
            "answer": round((t1 - t0) * 1000, 2),
            "total": round((t1 - started) * 1000, 2),
        }
        yield answer

    def _extract(self, found: Search) -> Answer:
        """The extractive answer to a search: the sentence the answer model picks, or none."""
        return ExtractiveAnswerer(
            self.settings.answer,
            load_model() if self.settings.answer.use_model else None,
            found.retriever.lexical.idf,
            found.context_terms,
            load_reader(self.settings.answer.reader_path)
            if self.settings.answer.use_reader
            else None,
        ).answer(found.query, found.candidates, found.passages, found.retriever.snapshot.docs)

    def _scope(self, answer: Answer, found: Search) -> None:
        """A scoped answer records its scope; when the chosen documents do not say, it says
        so and names the passage outside them that an unscoped answer would cite."""
        scope = answer.scope = found.query.scope
        # An abstention that quotes the chosen documents (they say the detail is not known)
        # stands as it is.
        if scope and answer.abstained and not answer.citations:
            kinds = {i: d.meta.kind for i, d in found.retriever.snapshot.docs.items()}
            query = replace(found.query, scope=Scope())
            wider = run_search(query, found.retriever, self.embed_query, self.settings)
            outside = self._extract(wider)
            cited = [c for c in outside.citations if c.doc_id not in scope.doc_ids(kinds)]
            if cited and not outside.abstained:
                answer.lead = Lead(cited[0].passage_id, cited[0].doc_id, cited[0].title)
            answer.text = scoped_no_answer(answer.lead)

    @staticmethod
    def _list_cited(answer: Answer, found: Search) -> None:
        """A passage cited from below the top k is listed with the retrieved passages too."""
        listed = {sp.passage.id for sp in answer.passages}
        for c in found.candidates:
            pid = c.passage.passage.id
            if pid not in listed and any(x.passage_id == pid for x in answer.citations):
                listed.add(pid)
                answer.passages.append(c.passage)

    def llm(self) -> Any:
        """The configured language model, built on first use; None in extractive mode."""
        with self._lock:
            if self._llm is _UNSET:
                self._llm = build_llm(self.settings)
            return self._llm

    def rewriter(self) -> Any:
        """How follow-ups become standalone questions: the model when one is configured."""
        llm = self.llm()
        if llm is None:
            return KeywordRewriter()
        return LLMRewriter(llm, KeywordRewriter())

    def cite(self, claim: str, k: int = 5) -> list[SupportResult]:
        """The passages that support a claim, best supported first, with their scores."""
        text = self.clean(claim, "claim")
        whole_number("k", k, 1)
        retriever = self.retriever()
        vector = self.embed_query(text)
        found = retriever.retrieve(text, vector, k * 2)
        checked = self._support(text, vector, [sp.passage for sp in found], retriever)
        results = []
        for sp, s in zip(found, checked, strict=True):
            span = sp.passage.sentences[s.sentence] if s.sentence is not None else None
            results.append(SupportResult(sp.passage, s.score, span, sp.score))
        results.sort(key=lambda r: (-r.score, -r.retrieval_score))
        return results[:k]

    # -- lookups ----------------------------------------------------------------------------

    def supports(self, claim: str, passage_ids: list[str]) -> list[float]:
        """How well each of these passages supports a claim (the support check, 0 for a
        passage not in the index): a judge of answers made elsewhere."""
        known = self.passages(passage_ids)
        if not claim.strip() or not known:
            return [0.0 for _ in passage_ids]
        checked = self._support(claim, self.embed_query(claim), known, self.retriever())
        scores = {p.id: s.score for p, s in zip(known, checked, strict=True)}
        return [scores.get(pid, 0.0) for pid in passage_ids]

    def _support(
        self, claim: str, vector: np.ndarray, passages: list[Passage], retriever: HybridRetriever
    ) -> list[Support]:
        """The support check of one claim against each passage, with its sentence vectors."""
        _, vectors = retriever.snapshot.vectors([p.id for p in passages])
        return [
            support(
                claim, p, retriever.lexical.idf, vector, vectors.get(p.id), self.settings.verify
            )
            for p in passages
        ]

    def passages(self, ids: list[str] | None = None) -> list[Passage]:
        """Every indexed passage in document order, or those of `ids` that exist."""
        snapshot = self.snapshot()
        if ids is None:
            return list(snapshot.passages)
        return [snapshot.by_id[i] for i in ids if i in snapshot.by_id]

    @property
    def generation(self) -> str | None:
        """The index generation answers come from (stamped on evaluation runs)."""
        return self.store.current_generation()

    def passage(self, passage_id: str) -> Passage:
        if not isinstance(passage_id, str):
            raise InputError(f"A passage id is text, not {type(passage_id).__name__}.")
        snapshot = self.snapshot()
        wanted = passage_id.strip()
        found = snapshot.passage(wanted)
        if found is not None:
            return found
        doc_id = wanted.partition(":")[0]
        typo = difflib.get_close_matches(wanted, list(snapshot.by_id), n=1, cutoff=0.9)
        if doc_id in snapshot.docs and not typo:
            # A cited passage whose document was edited and indexed again: say so, rather
            # than only "no passage", which reads like a typo.
            raise InputError(
                f"No passage with id '{passage_id}' in the index. Its document, "
                f"'{snapshot.docs[doc_id].meta.title}' ({doc_id}), is there, but its text has "
                "changed since this id was given.",
                "Ask again to cite its current text.",
            )
        close = difflib.get_close_matches(wanted, list(snapshot.by_id), n=3)
        hint = (
            f"Did you mean: {', '.join(close)}?"
            if close
            else "Passage ids appear in `assistant ask --json` and `assistant cite` output, "
            "for example "
            + (snapshot.passages[0].id if snapshot.passages else "doc:0a1b2c3d4e")
            + "."
        )
        raise InputError(f"No passage with id '{passage_id}' in the index.", hint)

    def context(self, passage_id: str, chars: int = 400) -> PassageContext:
        """A passage with up to `chars` characters of its document on each side."""
        whole_number("chars", chars, 0)
        p = self.passage(passage_id)
        doc = self.snapshot().docs[p.doc_id]
        before = doc.text[max(0, p.start - chars) : p.start]
        after = doc.text[p.end : p.end + chars]
        return PassageContext(p, doc, before, after)

    def sources(self) -> list[SourceSummary]:
        """The indexed documents, the article first, then sources by title."""
        snapshot = self.snapshot()
        docs = sorted(
            snapshot.docs.values(),
            key=lambda d: (d.meta.kind != "article", d.meta.title.lower()),
        )
        return [SourceSummary(d, len(d.passage_ids)) for d in docs]

    def document(self, doc_id: str) -> StoredDocument:
        doc = self.snapshot().document(doc_id)
        if doc is None:
            raise InputError(
                f"No document with id '{doc_id}' in the index.",
                "`assistant sources` lists the document ids.",
            )
        return doc

    def idf(self, term: str) -> float:
        """How rare a stemmed term is in the indexed passages (BM25's idf)."""
        return self.retriever().lexical.idf(term)
