"""The Chroma collections of one index generation: passages (written through llama-index),
their sentences, and one record per document, embedded on disk or on a Chroma server.

A document's record is written last and deleted first, so a passage whose document has no
matching record is an orphan from an interrupted write: readers ignore it and the next writer
removes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from assistant.corpus import CorpusDocument
from assistant.errors import StoreUnavailableError
from assistant.faults import fault_point
from assistant.types import DocumentMeta, Passage, StoredDocument

PASSAGES, SENTENCES, DOCUMENTS = "passages", "sentences", "documents"


def sentence_ids(passage: Passage) -> list[str]:
    """The record ids of a passage's sentences in the sentences collection."""
    return [f"{passage.id}/{i}" for i in range(len(passage.sentences))]


def split_sentence_id(record: str) -> tuple[str, int]:
    """(passage id, sentence index) of a sentence record id."""
    pid, _, index = record.rpartition("/")
    return pid, int(index)


def per_passage(
    passages: Sequence[Passage], vectors: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """One matrix of sentence vectors per passage, for the passages whose every sentence has
    a vector."""
    out = {}
    for p in passages:
        ids = sentence_ids(p)
        if ids and all(i in vectors for i in ids):
            out[p.id] = np.vstack([vectors[i] for i in ids])
    return out


class ChromaIndex:
    """The three Chroma collections of one index generation."""

    def __init__(self, client: Any, prefix: str = "assistant-") -> None:
        self.client = client
        self.prefix = prefix
        self._collections: dict[str, Any] = {}
        self._vector_store: Any = None

    @classmethod
    def embedded(cls, path: Path) -> ChromaIndex:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
        return cls(client)

    @classmethod
    def remote(cls, url: str, prefix: str = "assistant-") -> ChromaIndex:
        from urllib.parse import urlparse

        import chromadb
        from chromadb.config import Settings as ChromaSettings

        parsed = urlparse(url if "://" in url else f"http://{url}")
        if not parsed.hostname:
            raise StoreUnavailableError(
                f"'{url}' is not a Chroma server URL.", "Use the form http://host:port."
            )
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreUnavailableError(
                f"Cannot reach the Chroma server at {url} ({exc.__class__.__name__}).",
                "Start it (for example `chroma run --path DIR --port 8000`) or unset "
                "ASSISTANT_CHROMA_URL to use the embedded store.",
            ) from None
        return cls(client, prefix)

    POINTER = "assistant-pointer"

    def pointer(self) -> dict[str, Any]:
        """The live generation recorded on a server ({} when there is none)."""
        try:
            col = self.client.get_collection(self.POINTER, embedding_function=None)
        except Exception:
            return {}
        return dict(col.metadata or {})

    def set_pointer(self, generation: str, info: dict[str, Any]) -> None:
        """Switch every reader of the server to `generation` (one metadata write)."""
        col = self.client.get_or_create_collection(self.POINTER, embedding_function=None)
        col.modify(
            metadata={
                "current": generation,
                "info": json.dumps(info),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )

    def touch_pointer(self) -> None:
        """Tell readers on other machines that the live generation changed in place."""
        meta = self.pointer()
        if meta.get("current"):
            col = self.client.get_collection(self.POINTER, embedding_function=None)
            col.modify(metadata={**meta, "updated": f"{time.time():.6f}"})

    def drop_generations(self, keep: set[str]) -> None:
        """Delete the collections of generations not in `keep`."""
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name.startswith("assistant-gen-"):
                generation = name[len("assistant-") :].rsplit("-", 1)[0]
                if generation not in keep:
                    with suppress(Exception):
                        self.client.delete_collection(name)

    def collection(self, name: str, create: bool = False) -> Any:
        if name not in self._collections:
            full = f"{self.prefix}{name}"
            if create:
                col = self.client.get_or_create_collection(
                    full, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
                )
            else:
                col = self.client.get_collection(full, embedding_function=None)
            self._collections[name] = col
        return self._collections[name]

    def create(self) -> None:
        for name in (PASSAGES, SENTENCES, DOCUMENTS):
            self.collection(name, create=True)

    def drop(self) -> None:
        for name in (PASSAGES, SENTENCES, DOCUMENTS):
            with suppress(Exception):
                self.client.delete_collection(f"{self.prefix}{name}")
        self._collections.clear()
        self._vector_store = None

    @property
    def vector_store(self) -> Any:
        """The passages collection as a llama-index vector store."""
        if self._vector_store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._vector_store = ChromaVectorStore(chroma_collection=self.collection(PASSAGES))
        return self._vector_store

    # -- reading ----------------------------------------------------------------------------

    def _get_all(
        self,
        name: str,
        include: list[str],
        batch: int = 5000,
        where: dict[str, Any] | None = None,
    ) -> dict[str, list[Any]]:
        col = self.collection(name)
        out: dict[str, list[Any]] = {"ids": [], **{k: [] for k in include}}
        offset = 0
        while True:
            got = col.get(include=include, limit=batch, offset=offset, where=where)
            out["ids"].extend(got["ids"])
            for key in include:
                values = got[key]
                out[key].extend(list(values) if values is not None else [])
            if len(got["ids"]) < batch:
                return out
            offset += batch

    def document_records(self) -> dict[str, str]:
        """doc_id -> content hash of every complete document."""
        got = self._get_all(DOCUMENTS, ["metadatas"])
        return {
            i: str(m.get("content_hash", ""))
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
        }

    def read(self) -> tuple[dict[str, StoredDocument], list[Passage]]:
        """Every complete document and its passages, in document order."""
        got = self._get_all(DOCUMENTS, ["metadatas", "documents"])
        docs: dict[str, StoredDocument] = {}
        for doc_id, meta, text in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
            info = json.loads(meta["meta"])
            docs[doc_id] = StoredDocument(
                DocumentMeta.from_dict(info),
                text or "",
                str(meta["content_hash"]),
                pages=tuple(int(n) for n in json.loads(str(meta.get("pages") or "[]"))),
            )
        got = self._get_all(PASSAGES, ["metadatas", "documents"])
        passages: list[Passage] = []
        for pid, meta, text in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
            doc = docs.get(str(meta.get("doc_id")))
            if doc is None or meta.get("content_hash") != doc.content_hash:
                continue  # orphan of an interrupted write
            passages.append(
                Passage(
                    id=pid,
                    doc_id=doc.id,
                    start=int(meta["start"]),
                    end=int(meta["end"]),
                    text=text or "",
                    section=str(meta.get("section", "")),
                    ordinal=int(meta.get("ordinal", 0)),
                    sentences=tuple(tuple(s) for s in json.loads(meta["sentences"])),  # type: ignore[misc]
                )
            )
        passages.sort(key=lambda p: (p.doc_id, p.ordinal))
        for p in passages:
            docs[p.doc_id].passage_ids.append(p.id)
        return docs, passages

    def nearest(
        self,
        name: str,
        vector: np.ndarray,
        k: int,
        total: int,
        where: dict[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """(record id, cosine similarity) of the `k` records of a collection of `total`
        (those matching `where`, a metadata filter) that lie nearest to `vector`, nearest first.

        Queries Chroma directly: going through llama-index here would import all of
        llama_index.core (1.5 s on a cold start) and rebuild a node per hit for nothing."""
        n = min(k, total)
        if n <= 0:
            return []
        got = self.collection(name).query(
            query_embeddings=[vector], n_results=n, include=["distances"], where=where
        )
        return [
            (i, 1.0 - float(d)) for i, d in zip(got["ids"][0], got["distances"][0], strict=True)
        ]

    def all_vectors(
        self, name: str, where: dict[str, Any] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Every record id of a collection (that matches `where`) and its embedding."""
        got = self._get_all(name, ["embeddings"], where=where)
        if not got["ids"]:
            return [], np.zeros((0, 0), dtype=np.float32)
        return got["ids"], np.asarray(got["embeddings"], dtype=np.float32)

    def passage_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of these passages."""
        if not ids:
            return {}
        got = self.collection(PASSAGES).get(ids=list(ids), include=["embeddings"])
        return {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }

    def sentence_vectors(self, passages: Sequence[Passage]) -> dict[str, np.ndarray]:
        """The stored sentence embeddings of these passages, one matrix per passage."""
        ids = [sid for p in passages for sid in sentence_ids(p)]
        if not ids:
            return {}
        got = self.collection(SENTENCES).get(ids=ids, include=["embeddings"])
        vecs = {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }
        return per_passage(passages, vecs)

    # -- writing ----------------------------------------------------------------------------

    def delete_document(self, doc_id: str) -> None:
        """Remove a document: its record first, so its passages become orphans, then them."""
        self.collection(DOCUMENTS).delete(ids=[doc_id])
        fault_point("store.record-deleted")
        self.collection(PASSAGES).delete(where={"doc_id": doc_id})
        self.collection(SENTENCES).delete(where={"doc_id": doc_id})

    def remove_orphans(self, keep: Iterable[str]) -> None:
        keep = list(keep)
        for name in (PASSAGES, SENTENCES):
            where = {"doc_id": {"$nin": keep}} if keep else None
            col = self.collection(name)
            if where is None:
                ids = col.get(include=[])["ids"]
                if ids:
                    col.delete(ids=ids)
            else:
                col.delete(where=where)

    def add_documents(
        self, items: Sequence[tuple[CorpusDocument, list[Passage], np.ndarray, np.ndarray]]
    ) -> None:
        """Write documents' passages and sentences, then their records (which make them live):
        (document, passages, passage vectors, sentence vectors) each, written together, as
        one write per collection costs about as much as one per document."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        nodes = [
            TextNode(
                id_=p.id,
                text=p.text,
                embedding=passage_vecs[i].tolist(),
                start_char_idx=p.start,
                end_char_idx=p.end,
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.id)},
                metadata={
                    "title": doc.meta.title,
                    "kind": doc.meta.kind,
                    "url": doc.meta.url,
                    "section": p.section,
                    "start": p.start,
                    "end": p.end,
                    "ordinal": p.ordinal,
                    "sentences": json.dumps([list(s) for s in p.sentences]),
                    "content_hash": doc.content_hash,
                },
            )
            for doc, passages, passage_vecs, _ in items
            for i, p in enumerate(passages)
        ]
        for start in range(0, len(nodes), 4000):
            self.vector_store.add(nodes[start : start + 4000])
        fault_point("store.passages-written")
        sent_ids = [sid for _, passages, _, _ in items for p in passages for sid in sentence_ids(p)]
        sent_docs = [
            {"doc_id": doc.id}
            for doc, passages, _, _ in items
            for p in passages
            for _ in p.sentences
        ]
        dim = items[0][2].shape[1] if items else 0
        sent_vecs = np.concatenate([v for *_, v in items]).reshape(-1, dim) if items else None
        for start in range(0, len(sent_ids), 4000):
            stop = start + 4000
            self.collection(SENTENCES).upsert(
                ids=sent_ids[start:stop],
                embeddings=sent_vecs[start:stop],  # type: ignore[index]
                metadatas=sent_docs[start:stop],
            )
        fault_point("store.sentences-written")
        if not items:
            return
        # A document's own vector (mean of its passages) keeps Chroma from embedding anything.
        doc_vecs = []
        for _, _, passage_vecs, _ in items:
            vec = passage_vecs.mean(axis=0) if len(passage_vecs) else np.ones(dim)
            doc_vecs.append((vec / (float(np.linalg.norm(vec)) or 1.0)).astype(np.float32))
        self.collection(DOCUMENTS).upsert(
            ids=[doc.id for doc, *_ in items],
            embeddings=doc_vecs,
            documents=[doc.text for doc, *_ in items],
            metadatas=[
                {
                    "content_hash": doc.content_hash,
                    "meta": json.dumps(doc.meta.to_dict(), ensure_ascii=False),
                    "passages": len(passages),
                    # where each page starts, for citing a PDF's page
                    **({"pages": json.dumps(doc.extracted.pages)} if doc.extracted.pages else {}),
                }
                for doc, passages, *_ in items
            ],
        )
        fault_point("store.document-written")
