"""One question's search: BM25 beside the question's embedding, hybrid retrieval, every
sentence of the fused passages scored as an answer, and the passages reordered by their best
sentence."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.config import Settings
from assistant.reader import load_reader
from assistant.rerank import Candidate, SentenceScorer, rerank, reread
from assistant.retrieve import HybridRetriever, worker_pool
from assistant.types import Query, ScoredPassage


@dataclass
class Search:
    """What retrieval found for a question: passages best first and their scored sentences."""

    query: Query
    vector: np.ndarray
    passages: list[ScoredPassage]  # the best k, reranked
    candidates: list[Candidate]  # sentences of every reranked passage, best first
    timings_ms: dict[str, float]
    retriever: HybridRetriever  # what was searched: the answer reads the same index view
    scorer: SentenceScorer

    def context_terms(self, candidate: Candidate) -> set[str]:
        """The stemmed terms of a candidate's passage, its title and section."""
        p = candidate.passage.passage
        doc = self.retriever.snapshot.docs.get(p.doc_id)
        return self.scorer.analyse(p, doc.meta.title if doc else "").context.terms


def run_search(
    query: Query,
    retriever: HybridRetriever,
    embed: Callable[[str], np.ndarray],
    settings: Settings,
    k: int | None = None,
) -> Search:
    """The passages that best match a query, best first, with every sentence scored: of the
    documents in the query's scope only (InputError names the valid ids when the scope names
    one the index does not hold)."""
    text = query.standalone
    snapshot = retriever.snapshot
    docs = query.scope.resolve({i: d.meta.kind for i, d in snapshot.docs.items()})
    k = k or settings.retrieval.top_k
    depth = max(k, settings.retrieval.rerank_depth)
    t0 = time.perf_counter()
    # BM25 needs no vector: it runs while the question is embedded (numpy frees the GIL).
    lexical = worker_pool(settings.retrieval.workers).submit(
        retriever.lexical_search, text, depth, docs
    )
    vector = embed(text)
    t1 = time.perf_counter()
    found = retriever.retrieve(text, vector, depth, lexical=lexical.result(), docs=docs)
    p_vectors, vectors = snapshot.vectors([sp.passage.id for sp in found])
    scorer = SentenceScorer(retriever.lexical.idf, snapshot.cache.terms, settings.rerank)
    candidates = scorer.score(query, vector, found, vectors, p_vectors, snapshot.docs)
    reader = (
        load_reader(settings.answer.reader_path)
        if settings.answer.use_reader and settings.rerank.reader > 0
        else None
    )
    if reader is not None:
        # What is asked comes from the user's own words, as for the short answer.
        candidates = reread(
            candidates,
            lambda sentence: reader.answerable(query.text, sentence),
            settings.rerank.reader,
            settings.rerank.reader_depth,
        )
    passages = rerank(found, candidates)[:k]
    t2 = time.perf_counter()
    return Search(
        query,
        vector,
        passages,
        candidates,
        {"embed": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000},
        retriever,
        scorer,
    )
