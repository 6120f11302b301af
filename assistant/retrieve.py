"""Hybrid retrieval: dense vectors in Chroma and BM25 over the same passages, fused by
reciprocal rank, near-duplicates removed."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, lru_cache, partial

import numpy as np
from cachetools import LRUCache

from assistant.config import RetrievalSettings
from assistant.store import SENTENCES, IndexSnapshot
from assistant.text import normalize_for_match, terms
from assistant.types import Passage, ScoredPassage


@lru_cache(maxsize=4)
def worker_pool(size: int) -> ThreadPoolExecutor:
    """Threads shared by every question (`RetrievalSettings.workers` of them)."""
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="retrieve")


class LexicalIndex:
    """BM25 over passages (title and section included) plus the term statistics the answerer
    and the support check weigh words by."""

    def __init__(self, passages: Sequence[Passage], titles: dict[str, str]) -> None:
        import bm25s

        self.passages = list(passages)
        docs = [terms(f"{titles.get(p.doc_id, '')} {p.section} {p.text}") for p in self.passages]
        self.df: Counter[str] = Counter()
        for tokens in docs:
            self.df.update(set(tokens))
        self.n = len(docs)
        self._bm25 = bm25s.BM25()
        self._lock = threading.Lock()
        if docs:
            self._bm25.index(docs, show_progress=False)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))

    def search(
        self, query_terms: list[str], k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(passage position, BM25 score) of the best `k` passages with a positive score,
        among the positions `allowed` (a boolean mask) when given."""
        known = [t for t in query_terms if t in self.df]
        if not known or not self.passages:
            return []
        with self._lock:  # bm25s keeps scratch state on the object
            scores = self._bm25.get_scores(known)
        if allowed is not None:  # the rest score nothing, so the best k are all in scope
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        ranked = sorted(top.tolist(), key=lambda i: -scores[i])
        return [(i, float(scores[i])) for i in ranked if scores[i] > 0]


class HybridRetriever:
    """Dense + BM25 retrieval over one index snapshot."""

    def __init__(self, snapshot: IndexSnapshot, settings: RetrievalSettings) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self._masks: LRUCache[frozenset[str], np.ndarray] = LRUCache(64)
        self._masks_lock = threading.Lock()

    def _dedupe_key(self, passage: Passage) -> str:
        keys = self.snapshot.cache.dedupe
        key = keys.get(passage.id)
        if key is None:
            key = keys[passage.id] = normalize_for_match(passage.text)
        return key

    @cached_property
    def lexical(self) -> LexicalIndex:
        titles = {d.id: d.meta.title for d in self.snapshot.docs.values()}
        return LexicalIndex(self.snapshot.passages, titles)

    def candidates_per_list(self, k: int | None = None) -> int:
        return max(self.settings.candidates, k or self.settings.top_k)

    def in_scope(self, docs: frozenset[str] | None) -> np.ndarray | None:
        """Which BM25 positions belong to the documents `docs` (None: all of them)."""
        if docs is None:
            return None
        with self._masks_lock:
            mask = self._masks.get(docs)
        if mask is None:
            mask = np.fromiter((p.doc_id in docs for p in self.lexical.passages), dtype=bool)
            with self._masks_lock:
                self._masks[docs] = mask
        return mask

    def lexical_search(
        self, query: str, k: int | None = None, docs: frozenset[str] | None = None
    ) -> list[tuple[int, float]]:
        """BM25's ranking alone: needs no query vector, so it can run while one is computed.
        `docs`: search the passages of these documents only."""
        return self.lexical.search(terms(query), self.candidates_per_list(k), self.in_scope(docs))

    def retrieve(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int | None = None,
        lexical: list[tuple[int, float]] | None = None,
        docs: frozenset[str] | None = None,
    ) -> list[ScoredPassage]:
        """The best `k` passages for a query, fused and de-duplicated, best first. `lexical`
        is the BM25 ranking when the caller has already computed it; `docs`: the documents
        searched (None: all), each list searched within them so that k come back."""
        k = k or self.settings.top_k
        n = self.candidates_per_list(k)
        snap = self.snapshot
        # Two queries to Chroma run side by side (its client releases the GIL); in memory,
        # a search takes less time than handing it to another thread.
        search = partial(snap.sentence_search, query_vector, n * 3, docs)
        pending = (
            None if snap.in_memory(SENTENCES) else worker_pool(self.settings.workers).submit(search)
        )
        dense = [
            (pid, sim) for pid, sim in snap.dense_search(query_vector, n, docs) if pid in snap.by_id
        ]
        if lexical is None:
            lexical = self.lexical.search(terms(query), n, self.in_scope(docs))
        sentences: list[tuple[str, float]] = []
        seen_pids: set[str] = set()
        for pid, _, sim in pending.result() if pending else search():
            if pid in snap.by_id and pid not in seen_pids:
                seen_pids.add(pid)
                sentences.append((pid, sim))
        fused: dict[str, ScoredPassage] = {}
        rrf_k = self.settings.rrf_k
        for rank, (pid, sim) in enumerate(dense, start=1):
            item = fused.setdefault(pid, ScoredPassage(self.snapshot.by_id[pid], 0.0))
            item.score += self.settings.dense_weight / (rrf_k + rank)
            item.dense_score, item.dense_rank = sim, rank
        for rank, (pid, sim) in enumerate(sentences[:n], start=1):
            item = fused.setdefault(pid, ScoredPassage(self.snapshot.by_id[pid], 0.0))
            item.score += self.settings.sentence_weight / (rrf_k + rank)
            item.sentence_score, item.sentence_rank = sim, rank
        for rank, (pos, score) in enumerate(lexical, start=1):
            passage = self.lexical.passages[pos]
            item = fused.setdefault(passage.id, ScoredPassage(passage, 0.0))
            item.score += self.settings.bm25_weight / (rrf_k + rank)
            item.bm25_score, item.bm25_rank = score, rank
        ranked = sorted(fused.values(), key=lambda s: (-s.score, s.passage.id))
        stored = self.snapshot.docs
        out: list[ScoredPassage] = []
        seen: set[str] = set()
        for item in ranked:
            key = self._dedupe_key(item.passage)
            if key in seen or (docs is not None and item.passage.doc_id not in docs):
                continue
            seen.add(key)
            doc = stored.get(item.passage.doc_id)
            if doc is not None:
                item.title, item.kind = doc.meta.title, doc.meta.kind
            out.append(item)
            if len(out) == k:
                break
        return out
