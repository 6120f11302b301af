"""A read-only view of one index generation, loaded into memory for retrieval, with the data
derived from it (vector tables, term sets) kept for its life."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from cachetools import LRUCache

from assistant.store.chroma import (
    PASSAGES,
    SENTENCES,
    ChromaIndex,
    per_passage,
    sentence_ids,
    split_sentence_id,
)
from assistant.types import Passage, StoredDocument

T = TypeVar("T")


class VectorTable:
    """Every vector of one collection, held in memory and searched exactly."""

    def __init__(self, ids: list[str], matrix: np.ndarray) -> None:
        self.ids = ids
        self.matrix = matrix
        self.row = {record: i for i, record in enumerate(ids)}

    def nearest(
        self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        """(record id, cosine similarity) of the `k` nearest records, nearest first (the
        vectors are unit length, so the dot product is the cosine); of the rows `allowed`
        (a boolean mask) only, when given."""
        k = min(k, len(self.ids) if allowed is None else int(allowed.sum()))
        if k <= 0:
            return []
        sims = self.matrix @ vector
        if allowed is not None:
            sims = np.where(allowed, sims, -np.inf)
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.ids[i], float(sims[i])) for i in top]

    def get(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of those of these records the table holds."""
        return {i: self.matrix[self.row[i]] for i in ids if i in self.row}


@dataclass
class SnapshotCache:
    """Data derived from a snapshot's passages, computed once and kept for its life."""

    # Collection name -> its vectors, for the collections searched in memory.
    tables: dict[str, VectorTable] = field(default_factory=dict)
    # Passage id -> its vector.
    passage_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    # Passage id -> the vectors of its sentences, one row each.
    sentence_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    # Passage id -> its term sets and fact markers, for the sentence scorer.
    terms: dict[str, Any] = field(default_factory=dict)
    # Passage id -> its normalised text, to recognise repeated passages.
    dedupe: dict[str, str] = field(default_factory=dict)
    # (collection, document ids) -> which rows of its table are theirs, or their record count.
    scoped: LRUCache[tuple[str, frozenset[str]], Any] = field(default_factory=lambda: LRUCache(64))


@dataclass
class IndexSnapshot:
    """A read-only view of one index generation, loaded into memory for retrieval.

    A collection of at most `exact_limit` vectors is read from Chroma once and searched
    exactly in memory: at that size a matrix product beats a round trip through Chroma's
    query path and finds the true nearest neighbours. Larger collections are searched with
    Chroma's HNSW index."""

    root: Path
    generation: str
    info: dict[str, Any]
    docs: dict[str, StoredDocument]
    passages: list[Passage]
    chroma: ChromaIndex
    exact_limit: int = 0
    by_id: dict[str, Passage] = field(default_factory=dict)
    cache: SnapshotCache = field(default_factory=SnapshotCache)

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.passages}
        self.sentence_count = sum(len(p.sentences) for p in self.passages)
        self._lock = threading.Lock()

    def _total(self, name: str) -> int:
        return len(self.passages) if name == PASSAGES else self.sentence_count

    def in_memory(self, name: str) -> bool:
        """Whether this collection ("passages" or "sentences") is searched in memory."""
        return 0 < self._total(name) <= self.exact_limit

    def _table(self, name: str) -> VectorTable | None:
        if not self.in_memory(name):
            return None
        tables = self.cache.tables
        with self._lock:
            if name not in tables:
                tables[name] = VectorTable(*self.chroma.all_vectors(name))
            return tables[name]

    def _nearest(
        self, name: str, vector: np.ndarray, k: int, docs: frozenset[str] | None = None
    ) -> list[tuple[str, float]]:
        table = self._table(name)
        if docs is not None:
            return self._nearest_in(name, table, vector, k, docs)
        if table is not None:
            return table.nearest(vector, k)
        return self.chroma.nearest(name, vector, k, self._total(name))

    def _nearest_in(
        self,
        name: str,
        table: VectorTable | None,
        vector: np.ndarray,
        k: int,
        docs: frozenset[str],
    ) -> list[tuple[str, float]]:
        """The nearest records of the documents `docs` only: the rows of those documents
        searched exactly in memory, or Chroma's HNSW index walked with a filter on doc_id."""
        if table is not None:
            allowed = self._scoped(name, docs, lambda: self._rows_of(table, name, docs))
            return table.nearest(vector, k, allowed)
        total = self._scoped(name, docs, lambda: self._count(name, docs))
        where = {"doc_id": {"$in": sorted(docs)}}
        found = self.chroma.nearest(name, vector, k, total, where=where)
        if len(found) < min(k, total):
            # A filtered HNSW walk can stop short of k when the scope is a small part of the
            # collection: the scope's own vectors are then searched exactly.
            found = VectorTable(*self.chroma.all_vectors(name, where)).nearest(vector, k)
        return found

    def _scoped(self, name: str, docs: frozenset[str], make: Callable[[], T]) -> T:
        key = (name, docs)
        with self._lock:
            if key in self.cache.scoped:
                return self.cache.scoped[key]  # type: ignore[no-any-return]
        found = make()
        with self._lock:
            self.cache.scoped[key] = found
        return found

    def _doc_of(self, name: str, record: str) -> str | None:
        pid = record if name == PASSAGES else split_sentence_id(record)[0]
        passage = self.by_id.get(pid)
        return passage.doc_id if passage else None

    def _rows_of(self, table: VectorTable, name: str, docs: frozenset[str]) -> np.ndarray:
        """Which rows of a table hold records of the documents `docs`, as a boolean mask."""
        return np.fromiter((self._doc_of(name, rid) in docs for rid in table.ids), dtype=bool)

    def _count(self, name: str, docs: frozenset[str]) -> int:
        inside = [p for p in self.passages if p.doc_id in docs]
        return len(inside) if name == PASSAGES else sum(len(p.sentences) for p in inside)

    def dense_search(
        self, vector: np.ndarray, k: int, docs: frozenset[str] | None = None
    ) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) of the passages nearest to a query vector, of the
        documents `docs` only when given."""
        return self._nearest(PASSAGES, vector, k, docs)

    def sentence_search(
        self, vector: np.ndarray, k: int, docs: frozenset[str] | None = None
    ) -> list[tuple[str, int, float]]:
        """(passage id, sentence index, cosine similarity) of the nearest sentences, of the
        documents `docs` only when given."""
        return [
            (*split_sentence_id(sid), sim) for sid, sim in self._nearest(SENTENCES, vector, k, docs)
        ]

    def vectors(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Passage and sentence vectors of these passages, fetched from Chroma once each."""
        passage_cache = self.cache.passage_vectors
        sentence_cache = self.cache.sentence_vectors
        missing = [i for i in ids if i not in passage_cache]
        if missing:
            passage_cache.update(self._passage_vectors(missing))
            sentence_cache.update(self._sentence_vectors([self.by_id[i] for i in missing]))
        return (
            {i: passage_cache[i] for i in ids if i in passage_cache},
            {i: sentence_cache[i] for i in ids if i in sentence_cache},
        )

    def _passage_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        table = self._table(PASSAGES)
        return table.get(ids) if table is not None else self.chroma.passage_vectors(ids)

    def _sentence_vectors(self, passages: list[Passage]) -> dict[str, np.ndarray]:
        table = self._table(SENTENCES)
        if table is None:
            return self.chroma.sentence_vectors(passages)
        return per_passage(passages, table.get([sid for p in passages for sid in sentence_ids(p)]))

    def passage(self, passage_id: str) -> Passage | None:
        return self.by_id.get(passage_id)

    def document(self, doc_id: str) -> StoredDocument | None:
        return self.docs.get(doc_id)
