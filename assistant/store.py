"""The persisted index: Chroma collections wired through llama-index, plus the index folder.

Chroma holds everything needed to answer: passages (text, offsets, embeddings), their sentences
(embeddings, for the extractive answerer) and one record per document (metadata, full text,
content hash). A document's record is written last and deleted first, so a passage whose
document has no matching record is an orphan from an interrupted write: readers ignore it and
the next writer removes it.

The index folder (`index/` by default) holds:
  .lock          the write lock; its text names the process holding it
  CURRENT        the name of the live generation folder, replaced atomically
  gen-*/         index.json (format, settings, versions), state.json, chroma/
`assistant index --rebuild` builds a new generation and switches CURRENT only when it is done.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunking import chunk_document
from assistant.config import Settings
from assistant.corpus import CorpusDocument, file_fingerprints, scan
from assistant.embedding import Embedder
from assistant.errors import (
    AssistantError,
    IndexBusyError,
    IndexStateError,
    StoreUnavailableError,
)
from assistant.fsutil import FileLock, LockHeld, atomic_write_json, atomic_write_text
from assistant.types import DocumentMeta, IndexReport, Passage

FORMAT_VERSION = 2
PASSAGES, SENTENCES, DOCUMENTS = "passages", "sentences", "documents"
REBUILD_HINT = "Run `assistant index --rebuild` to build it again from the corpus."

ProgressFactory = Callable[[int, str], AbstractContextManager[Any]]


def no_progress(total: int, desc: str) -> AbstractContextManager[Any]:
    class _Null:
        def update(self, n: int = 1) -> None:
            pass

    return nullcontext(_Null())


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("chromadb", "llama-index-core", "sentence-transformers"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


@dataclass
class StoredDocument:
    """A document as the index holds it: metadata, the exact text offsets refer to, hash."""

    meta: DocumentMeta
    text: str
    content_hash: str
    passage_ids: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.meta.id


def _heading(meta: DocumentMeta, passage: Passage) -> str:
    return meta.title if not passage.section else f"{meta.title} — {passage.section}"


def _embed_text(meta: DocumentMeta, passage: Passage) -> str:
    """What the embedding model sees for a passage: title and section give it context."""
    return f"{_heading(meta, passage)}\n{passage.text}"


def _embed_sentences(meta: DocumentMeta, passage: Passage) -> list[str]:
    """What it sees for each sentence: "Deliveries began on 2 December 2019." means little
    without the document and section it belongs to."""
    head = _heading(meta, passage)
    return [f"{head}: {s}" for s in passage.sentence_texts()]


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

    def _get_all(self, name: str, include: list[str], batch: int = 5000) -> dict[str, list[Any]]:
        col = self.collection(name)
        out: dict[str, list[Any]] = {"ids": [], **{k: [] for k in include}}
        offset = 0
        while True:
            got = col.get(include=include, limit=batch, offset=offset)
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
                DocumentMeta.from_dict(info), text or "", str(meta["content_hash"])
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

    def dense_search(self, vector: np.ndarray, k: int, total: int) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) of the nearest passages (`total`: how many there are).

        Queries Chroma directly: going through llama-index here would import all of
        llama_index.core (1.5 s on a cold start) and rebuild a node per hit for nothing."""
        col = self.collection(PASSAGES)
        n = min(k, total)
        if n <= 0:
            return []
        got = col.query(query_embeddings=[vector], n_results=n, include=["distances"])
        return [
            (pid, 1.0 - float(d)) for pid, d in zip(got["ids"][0], got["distances"][0], strict=True)
        ]

    def sentence_search(
        self, vector: np.ndarray, k: int, total: int
    ) -> list[tuple[str, int, float]]:
        """(passage id, sentence index, cosine similarity) of the nearest sentences."""
        col = self.collection(SENTENCES)
        n = min(k, total)
        if n <= 0:
            return []
        got = col.query(query_embeddings=[vector], n_results=n, include=["distances"])
        out = []
        for sid, d in zip(got["ids"][0], got["distances"][0], strict=True):
            pid, _, index = sid.rpartition("/")
            out.append((pid, int(index), 1.0 - float(d)))
        return out

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
        ids = [f"{p.id}/{i}" for p in passages for i in range(len(p.sentences))]
        if not ids:
            return {}
        got = self.collection(SENTENCES).get(ids=ids, include=["embeddings"])
        vecs = {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }
        out = {}
        for p in passages:
            rows = [vecs.get(f"{p.id}/{i}") for i in range(len(p.sentences))]
            if all(r is not None for r in rows):
                out[p.id] = np.vstack(rows)  # type: ignore[arg-type]
        return out

    # -- writing ----------------------------------------------------------------------------

    def delete_document(self, doc_id: str) -> None:
        """Remove a document: its record first, so its passages become orphans, then them."""
        self.collection(DOCUMENTS).delete(ids=[doc_id])
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

    def add_document(
        self,
        doc: CorpusDocument,
        passages: list[Passage],
        passage_vecs: np.ndarray,
        sentence_vecs: np.ndarray,
    ) -> None:
        """Write a document's passages and sentences, then its record (which makes it live)."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        meta = doc.meta
        nodes = [
            TextNode(
                id_=p.id,
                text=p.text,
                embedding=passage_vecs[i].tolist(),
                start_char_idx=p.start,
                end_char_idx=p.end,
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc.id)},
                metadata={
                    "title": meta.title,
                    "kind": meta.kind,
                    "url": meta.url,
                    "section": p.section,
                    "start": p.start,
                    "end": p.end,
                    "ordinal": p.ordinal,
                    "sentences": json.dumps([list(s) for s in p.sentences]),
                    "content_hash": doc.content_hash,
                },
            )
            for i, p in enumerate(passages)
        ]
        if nodes:
            self.vector_store.add(nodes)
        sent_ids = [f"{p.id}/{i}" for p in passages for i in range(len(p.sentences))]
        for start in range(0, len(sent_ids), 4000):
            stop = start + 4000
            self.collection(SENTENCES).upsert(
                ids=sent_ids[start:stop],
                embeddings=sentence_vecs[start:stop],
                metadatas=[{"doc_id": doc.id}] * len(sent_ids[start:stop]),
            )
        # The document's own vector (mean of its passages) keeps Chroma from embedding anything.
        doc_vec = passage_vecs.mean(axis=0) if len(passage_vecs) else np.ones(passage_vecs.shape[1])
        doc_vec = doc_vec / (float(np.linalg.norm(doc_vec)) or 1.0)
        self.collection(DOCUMENTS).upsert(
            ids=[doc.id],
            embeddings=[doc_vec.astype(np.float32)],
            documents=[doc.text],
            metadatas=[
                {
                    "content_hash": doc.content_hash,
                    "meta": json.dumps(meta.to_dict(), ensure_ascii=False),
                    "passages": len(passages),
                }
            ],
        )


@dataclass
class IndexSnapshot:
    """A read-only view of one index generation, loaded into memory for retrieval."""

    root: Path
    generation: str
    info: dict[str, Any]
    docs: dict[str, StoredDocument]
    passages: list[Passage]
    chroma: ChromaIndex
    by_id: dict[str, Passage] = field(default_factory=dict)
    # Derived per-passage data (term sets, vectors) kept for the life of the snapshot.
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.passages}
        self.sentence_count = sum(len(p.sentences) for p in self.passages)

    def vectors(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Passage and sentence vectors of these passages, fetched from Chroma once each."""
        passage_cache = self.cache.setdefault("passage_vectors", {})
        sentence_cache = self.cache.setdefault("sentence_vectors", {})
        missing = [i for i in ids if i not in passage_cache]
        if missing:
            passage_cache.update(self.chroma.passage_vectors(missing))
            sentence_cache.update(self.chroma.sentence_vectors([self.by_id[i] for i in missing]))
        return (
            {i: passage_cache[i] for i in ids if i in passage_cache},
            {i: sentence_cache[i] for i in ids if i in sentence_cache},
        )

    def passage(self, passage_id: str) -> Passage | None:
        return self.by_id.get(passage_id)

    def document(self, doc_id: str) -> StoredDocument | None:
        return self.docs.get(doc_id)


class IndexStore:
    """Opens, writes and rebuilds the index that `Settings` point at."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.root = Path(settings.index_dir)
        self._embedder = embedder
        self._pointer: tuple[float, dict[str, Any]] | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.settings.embed_model, self.settings.query_runtime)
        return self._embedder

    # -- layout -----------------------------------------------------------------------------

    def current_generation(self) -> str | None:
        if self.settings.chroma_url:
            return self._server_pointer().get("current")
        path = self.root / "CURRENT"
        try:
            name = path.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexStateError(f"Cannot read {path}: {exc.strerror}.", REBUILD_HINT) from None
        return name or None

    def _server_pointer(self, max_age: float = 0.0) -> dict[str, Any]:
        """On a Chroma server the live generation and its info are kept in the server itself,
        so every process (on any machine) sharing the server sees the same index."""
        now = time.monotonic()
        cached = self._pointer
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
        assert self.settings.chroma_url
        meta = ChromaIndex.remote(self.settings.chroma_url).pointer()
        self._pointer = (now, meta)
        return meta

    def exists(self) -> bool:
        gen = self.current_generation()
        if not gen:
            return False
        if self.settings.chroma_url:
            return True
        return (self.root / gen / "index.json").exists()

    def _info(self, gen: str) -> dict[str, Any]:
        if self.settings.chroma_url:
            pointer = self._server_pointer()
            if pointer.get("current") == gen and pointer.get("info"):
                return dict(json.loads(pointer["info"]))
        path = self.root / gen / "index.json"
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexStateError(
                f"The index at {self.root} is incomplete: {path} is missing.", REBUILD_HINT
            ) from None
        except (OSError, ValueError, UnicodeDecodeError):
            raise IndexStateError(f"The index file {path} is unreadable.", REBUILD_HINT) from None
        if not isinstance(info, dict):
            raise IndexStateError(f"The index file {path} is unreadable.", REBUILD_HINT)
        return info

    def check_compatible(self, info: dict[str, Any]) -> None:
        """Refuse an index built with another format or other index settings."""
        if info.get("format") != FORMAT_VERSION:
            raise IndexStateError(
                f"The index at {self.root} has format {info.get('format')}, this version of the "
                f"assistant reads format {FORMAT_VERSION}.",
                REBUILD_HINT,
            )
        want = json.loads(json.dumps(self.settings.index_fingerprint()))
        have = info.get("settings")
        if have != want:
            diffs = _diff(have if isinstance(have, dict) else {}, want)
            raise IndexStateError(
                f"The index at {self.root} was built with other settings ({diffs}).",
                REBUILD_HINT,
            )

    def _chroma(self, gen: str) -> ChromaIndex:
        if self.settings.chroma_url:
            return ChromaIndex.remote(self.settings.chroma_url, prefix=f"assistant-{gen}-")
        return ChromaIndex.embedded(self.root / gen / "chroma")

    # -- reading ----------------------------------------------------------------------------

    def open(self) -> IndexSnapshot:
        """Load the live generation for reading (no lock: writers never block readers)."""
        gen = self.current_generation()
        if not gen:
            raise IndexStateError(
                f"There is no index at {self.root} yet.", "Run `assistant index` to build it."
            )
        info = self._info(gen)
        self.check_compatible(info)
        try:
            chroma = self._chroma(gen)
            docs, passages = chroma.read()
        except AssistantError:
            raise
        except Exception as exc:
            raise IndexStateError(
                f"The vector store of the index at {self.root} is unreadable "
                f"({exc.__class__.__name__}: {str(exc)[:200]}).",
                REBUILD_HINT,
            ) from None
        return IndexSnapshot(self.root, gen, info, docs, passages, chroma)

    def state(self) -> dict[str, Any]:
        gen = self.current_generation()
        if not gen:
            return {}
        try:
            data = json.loads((self.root / gen / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def interrupted(self) -> bool:
        """Whether the last write to the live generation stopped before it finished."""
        state = self.state()
        return bool(state) and state.get("clean") is False

    def change_token(self, generation: str | None = None) -> tuple[Any, ...]:
        """Changes whenever a writer finishes; long-lived readers compare it to reload.
        Stats only (no reads): it runs before every question."""
        if self.settings.chroma_url:
            pointer = self._server_pointer(max_age=5.0)
            return (pointer.get("current"), pointer.get("updated"))
        out: list[Any] = []
        names = ["CURRENT"] + ([f"{generation}/state.json"] if generation else [])
        for name in names:
            try:
                st = (self.root / name).stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    # -- writing ----------------------------------------------------------------------------

    def lock(self, description: str) -> FileLock:
        return FileLock(self.root / ".lock", description)

    def _acquire(self, description: str) -> FileLock:
        lock = self.lock(description)
        try:
            lock.acquire()
        except LockHeld as held:
            raise IndexBusyError(
                f"The index at {self.root} is being written by {held.holder}.",
                "Wait for it to finish (readers can still ask questions), then try again.",
            ) from None
        except OSError as exc:
            raise IndexStateError(
                f"Cannot write the index at {self.root}: {exc.strerror}.",
                "Check the folder's permissions or set ASSISTANT_INDEX_DIR.",
            ) from None
        return lock

    def is_up_to_date(self) -> bool:
        """True when the corpus files look exactly as at the last clean index run (cheap)."""
        state = self.state()
        if not state.get("clean"):
            return False
        try:
            info = self._info(self.current_generation() or "")
            self.check_compatible(info)
        except IndexStateError:
            return False
        fingerprints = {k: list(v) for k, v in file_fingerprints(self.settings.corpus_dir).items()}
        return bool(state.get("files") == fingerprints)

    def sync(self, progress: ProgressFactory = no_progress, rebuild: bool = False) -> IndexReport:
        """Bring the index in line with the corpus: embed new and edited documents, drop
        deleted ones. With `rebuild`, build a new generation and switch to it at the end."""
        started = time.perf_counter()
        lock = self._acquire("assistant index --rebuild" if rebuild else "assistant index")
        try:
            # Half-built generations of a killed rebuild: no one else can be writing them now.
            for leftover in self.root.glob("gen-*.tmp"):
                shutil.rmtree(leftover, ignore_errors=True)
            if not rebuild and self.is_up_to_date():
                state = self.state()
                report = IndexReport(unchanged=sorted(state.get("docs", {})))
                report.passages = int(state.get("passages", 0))
                report.skipped = [tuple(s) for s in state.get("skipped", [])]  # type: ignore[misc]
                report.seconds = time.perf_counter() - started
                return report
            gen = self.current_generation()
            shared = bool(self.settings.chroma_url)  # on a server the generation lives there
            if rebuild or not gen or not (shared or (self.root / gen / "index.json").exists()):
                report = self._build_generation(progress)
            else:
                self.check_compatible(self._info(gen))
                (self.root / gen).mkdir(parents=True, exist_ok=True)
                report = self._update(gen, progress)
            report.seconds = time.perf_counter() - started
            return report
        finally:
            lock.release()

    def _build_generation(self, progress: ProgressFactory) -> IndexReport:
        gen = f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        tmp = self.root / f"{gen}.tmp"
        tmp.mkdir(parents=True)
        try:
            info = {
                "format": FORMAT_VERSION,
                "settings": json.loads(json.dumps(self.settings.index_fingerprint())),
                "versions": library_versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "generation": gen,
                "store": self.settings.chroma_url or "embedded",
            }
            atomic_write_json(tmp / "index.json", info)
            if self.settings.chroma_url:
                ChromaIndex.remote(self.settings.chroma_url, prefix=f"assistant-{gen}-").drop()
            report = self._update(gen, progress, folder=tmp, fresh=True)
            os.replace(tmp, self.root / gen)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = self.current_generation()
        if self.settings.chroma_url:
            ChromaIndex.remote(self.settings.chroma_url).set_pointer(gen, info)
            self._pointer = None
        atomic_write_text(self.root / "CURRENT", gen + "\n")
        self._collect_garbage(keep={gen, old} if old else {gen})
        return report

    def _collect_garbage(self, keep: set[str]) -> None:
        """Remove generations older than the previous one, and leftovers of killed builds."""
        for path in self.root.glob("gen-*"):
            if path.name not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        if self.settings.chroma_url:
            with suppress(AssistantError):
                ChromaIndex.remote(self.settings.chroma_url).drop_generations(keep)

    def _update(
        self, gen: str, progress: ProgressFactory, folder: Path | None = None, fresh: bool = False
    ) -> IndexReport:
        folder = folder or self.root / gen
        state_path = folder / "state.json"
        old_state = {}
        if state_path.exists():
            try:
                old_state = json.loads(state_path.read_text(encoding="utf-8"))
            except ValueError:
                old_state = {}
        atomic_write_json(state_path, {**old_state, "clean": False})
        if self.settings.chroma_url:
            chroma = ChromaIndex.remote(self.settings.chroma_url, prefix=f"assistant-{gen}-")
        else:
            chroma = ChromaIndex.embedded(folder / "chroma")
        try:
            chroma.create()
            records = {} if fresh else chroma.document_records()
        except AssistantError:
            raise
        except Exception as exc:
            raise IndexStateError(
                f"The vector store of the index at {self.root} is unreadable "
                f"({exc.__class__.__name__}).",
                REBUILD_HINT,
            ) from None
        corpus = scan(self.settings.corpus_dir)
        report = IndexReport(skipped=corpus.skipped)
        current = {d.id: d for d in corpus.documents}
        chroma.remove_orphans(records)  # leftovers of an interrupted write
        for doc_id in sorted(set(records) - set(current)):
            chroma.delete_document(doc_id)
            report.removed.append(doc_id)
        todo = []
        for doc in corpus.documents:
            if records.get(doc.id) == doc.content_hash:
                report.unchanged.append(doc.id)
            else:
                (report.updated if doc.id in records else report.added).append(doc.id)
                todo.append(doc)
        if todo:
            self._embed_and_write(chroma, todo, progress, report)
        report.passages = chroma.collection(PASSAGES).count()
        fingerprints = file_fingerprints(self.settings.corpus_dir)
        atomic_write_json(
            state_path,
            {
                "clean": True,
                "files": {k: list(v) for k, v in fingerprints.items()},
                "docs": {d.id: d.content_hash for d in corpus.documents},
                "passages": report.passages,
                "skipped": [list(s) for s in report.skipped],
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        if self.settings.chroma_url and report.changed and not fresh:
            chroma.touch_pointer()
        return report

    def _embed_and_write(
        self,
        chroma: ChromaIndex,
        docs: list[CorpusDocument],
        progress: ProgressFactory,
        report: IndexReport,
    ) -> None:
        embedder = self.embedder
        if self.settings.chunk.max_tokens + 2 > embedder.max_seq_length:
            raise AssistantError(
                f"chunk.max_tokens ({self.settings.chunk.max_tokens}) does not fit the embedding "
                f"model's max_seq_length ({embedder.max_seq_length}).",
                "Lower ASSISTANT_CHUNK__MAX_TOKENS.",
            )
        total_docs = len(docs)
        cache: dict[str, np.ndarray] = {}  # identical texts (boilerplate, repeats) embed once
        with progress(total_docs, "Embedding documents") as bar:
            for start in range(0, total_docs, 64):
                group = docs[start : start + 64]
                plans = []
                for doc in group:
                    passages = chunk_document(
                        doc.id, doc.extracted, self.settings.chunk, embedder.count_tokens
                    )
                    texts = [_embed_text(doc.meta, p) for p in passages]
                    sentences = [t for p in passages for t in _embed_sentences(doc.meta, p)]
                    plans.append((doc, passages, texts, sentences))
                # One call per group keeps batches full; small documents embed much faster so.
                todo = list(
                    dict.fromkeys(t for _, _, a, b in plans for t in (*a, *b) if t not in cache)
                )
                if todo:
                    for text, vec in zip(todo, embedder.embed(todo), strict=True):
                        cache[text] = vec
                for doc, passages, texts, sentences in plans:
                    dim = embedder.dimension
                    passage_vecs = np.array([cache[t] for t in texts]).reshape(-1, dim)
                    sentence_vecs = np.array([cache[t] for t in sentences]).reshape(-1, dim)
                    # Removes the old version, or leftovers of a killed write, before adding.
                    chroma.delete_document(doc.id)
                    chroma.add_document(doc, passages, passage_vecs, sentence_vecs)
                    report.embedded += len(texts)
                    bar.update(1)
                if len(cache) > 100_000:
                    cache.clear()


def _diff(have: dict[str, Any], want: dict[str, Any], prefix: str = "") -> str:
    parts = []
    for key in sorted(set(have) | set(want)):
        a, b = have.get(key), want.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _diff(a, b, f"{prefix}{key}.")
            if inner:
                parts.append(inner)
        elif a != b:
            parts.append(f"{prefix}{key}: index has {a!r}, settings say {b!r}")
    return "; ".join(parts)
