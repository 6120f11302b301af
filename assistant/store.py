"""The persisted index: generations of Chroma collections (see chroma.py), the index folder,
the write lock, and incremental indexing.

The index folder (`index/` by default) holds:
  .lock          the write lock; its text names the process holding it
  CURRENT        the name of the live generation folder, replaced atomically
  gen-*/         index.json (format, settings, versions), state.json, chroma/
`assistant index --rebuild` builds a new generation and switches CURRENT only when it is done.

With a Chroma server (`chroma_url`) the live generation is recorded in the server, and this
process keeps its local files (lock, per-generation state) in `servers/<host-port>/` of the
index folder: switching modes, or pointing two servers at one folder, never touches the other
mode's index.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chroma import (
    PASSAGES,
    SENTENCES,
    ChromaIndex,
    per_passage,
    sentence_ids,
    split_sentence_id,
)
from assistant.chunking import chunk_document
from assistant.config import Settings
from assistant.corpus import CorpusDocument, file_fingerprints, scan
from assistant.embedding import Embedder
from assistant.errors import (
    AssistantError,
    IndexBusyError,
    IndexStateError,
)
from assistant.faults import fault_point
from assistant.fsutil import FileLock, LockHeld, atomic_write_json, atomic_write_text
from assistant.types import DocumentMeta, IndexReport, Passage, StoredDocument

FORMAT_VERSION = 2
# What CURRENT may hold: a generation folder's name, never a path.
_GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9_-]+")
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


class VectorTable:
    """Every vector of one collection, held in memory and searched exactly."""

    def __init__(self, ids: list[str], matrix: np.ndarray) -> None:
        self.ids = ids
        self.matrix = matrix
        self.row = {record: i for i, record in enumerate(ids)}

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(record id, cosine similarity) of the `k` nearest records, nearest first (the
        vectors are unit length, so the dot product is the cosine)."""
        k = min(k, len(self.ids))
        if k <= 0:
            return []
        sims = self.matrix @ vector
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.ids[i], float(sims[i])) for i in top]

    def get(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of those of these records the table holds."""
        return {i: self.matrix[self.row[i]] for i in ids if i in self.row}


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
    # Derived per-passage data (term sets, vectors) kept for the life of the snapshot.
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)

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
        tables = self.cache.setdefault("tables", {})
        with self._lock:
            if name not in tables:
                tables[name] = VectorTable(*self.chroma.all_vectors(name))
            table: VectorTable = tables[name]
        return table

    def _nearest(self, name: str, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        table = self._table(name)
        if table is not None:
            return table.nearest(vector, k)
        return self.chroma.nearest(name, vector, k, self._total(name))

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) of the passages nearest to a query vector."""
        return self._nearest(PASSAGES, vector, k)

    def sentence_search(self, vector: np.ndarray, k: int) -> list[tuple[str, int, float]]:
        """(passage id, sentence index, cosine similarity) of the nearest sentences."""
        return [(*split_sentence_id(sid), sim) for sid, sim in self._nearest(SENTENCES, vector, k)]

    def vectors(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Passage and sentence vectors of these passages, fetched from Chroma once each."""
        passage_cache = self.cache.setdefault("passage_vectors", {})
        sentence_cache = self.cache.setdefault("sentence_vectors", {})
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


def local_root(settings: Settings) -> Path:
    """Where this index's local files live: the index folder for the embedded store, a folder
    of its own per server address in server mode."""
    root = Path(settings.index_dir)
    if not settings.chroma_url:
        return root
    address = re.sub(r"^[a-z]+://", "", settings.chroma_url.strip().lower()).rstrip("/")
    return root / "servers" / (re.sub(r"[^a-z0-9.]+", "-", address).strip("-") or "server")


class IndexStore:
    """Opens, writes and rebuilds the index that `Settings` point at."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.root = local_root(settings)
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
            name = path.read_bytes().decode("utf-8").strip()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            return None  # damaged: as if there were no index yet, so the next command builds one
        except OSError as exc:
            raise IndexStateError(f"Cannot read {path}: {exc.strerror}.", REBUILD_HINT) from None
        return name if _GENERATION_NAME.fullmatch(name) else None

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
        return IndexSnapshot(
            self.root,
            gen,
            info,
            docs,
            passages,
            chroma,
            exact_limit=self.settings.retrieval.exact_search_limit,
        )

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
        fault_point("store.generation-built")  # complete, but CURRENT still names the old one
        old = self.current_generation()
        if self.settings.chroma_url:
            ChromaIndex.remote(self.settings.chroma_url).set_pointer(gen, info)
            self._pointer = None
        atomic_write_text(self.root / "CURRENT", gen + "\n")
        fault_point("store.generation-switched")  # the old generation is not collected yet
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
        old_state: Any = {}
        if state_path.exists():
            try:
                old_state = json.loads(state_path.read_text(encoding="utf-8"))
            except ValueError:
                old_state = {}
        if not isinstance(old_state, dict):  # damaged from outside: rewritten below
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
