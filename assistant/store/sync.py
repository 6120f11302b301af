"""Writing the index: a new generation built from the whole corpus, or the live one brought
in line with it (new and edited documents embedded, deleted ones dropped), and the removal of
generations no longer needed.

Every step whose interruption matters is a named `fault_point`; whatever stops a write, the
next writer finds a usable index (see chroma.py for the order of a document's records).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunking import chunk_document
from assistant.config import Settings
from assistant.corpus import LOADER_VERSION, CorpusDocument, recorded_files, scan
from assistant.embedding import Embedder
from assistant.errors import AssistantError, IndexStateError
from assistant.faults import fault_point
from assistant.fsutil import atomic_write_json
from assistant.store.chroma import PASSAGES, ChromaIndex
from assistant.store.pointer import FORMAT_VERSION, REBUILD_HINT, GenerationPointer
from assistant.types import DocumentMeta, IndexReport, Passage

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


class IndexWriter:
    """Writes generations of the index; the caller holds the write lock."""

    def __init__(
        self, settings: Settings, pointer: GenerationPointer, embedder: Callable[[], Embedder]
    ) -> None:
        self.settings = settings
        self.pointer = pointer
        self.root = pointer.root
        self._embedder = embedder  # loaded only when something is to be embedded

    def build(self, progress: ProgressFactory) -> IndexReport:
        """Build a new generation from the whole corpus, then make it the live one."""
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
            self.pointer.prepare(gen)
            report = self.update(gen, progress, folder=tmp, fresh=True)
            os.replace(tmp, self.root / gen)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fault_point("store.generation-built")  # complete, but CURRENT still names the old one
        old = self.pointer.current()
        self.pointer.set(gen, info)
        fault_point("store.generation-switched")  # the old generation is not collected yet
        self.collect_garbage(keep={gen, old} if old else {gen})
        return report

    def collect_garbage(self, keep: set[str]) -> None:
        """Remove generations older than the previous one, and leftovers of killed builds."""
        for path in self.root.glob("gen-*"):
            if path.name not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        self.pointer.collect(keep)

    def update(
        self, gen: str, progress: ProgressFactory, folder: Path | None = None, fresh: bool = False
    ) -> IndexReport:
        """Bring generation `gen` (built in `folder` when not yet live) in line with the corpus."""
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
        chroma = self.pointer.chroma(gen, folder)
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
        # The files' sizes and times are taken before their text is read: a file edited or
        # added while this run reads the corpus then looks changed to the next run, which
        # reads it again (taken after, the edit would be recorded as indexed and never be).
        files = recorded_files(self.settings.corpus_dir)
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
            self._embed_and_write(chroma, todo, progress, report, fresh)
        report.passages = chroma.collection(PASSAGES).count()
        atomic_write_json(
            state_path,
            {
                "clean": True,
                "files": files,
                "loader": LOADER_VERSION,
                "docs": {d.id: d.content_hash for d in corpus.documents},
                "passages": report.passages,
                "skipped": [list(s) for s in report.skipped],
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
        if report.changed and not fresh:
            self.pointer.changed_in_place(chroma)
        return report

    def _embed_and_write(
        self,
        chroma: ChromaIndex,
        docs: list[CorpusDocument],
        progress: ProgressFactory,
        report: IndexReport,
        fresh: bool,
    ) -> None:
        """Embed documents and write them, 64 at a time; in a new generation (`fresh`) there
        is no old version of any of them to delete first."""
        embedder = self._embedder()
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
                dim = embedder.dimension
                items = []
                for doc, passages, texts, sentences in plans:
                    passage_vecs = np.array([cache[t] for t in texts]).reshape(-1, dim)
                    sentence_vecs = np.array([cache[t] for t in sentences]).reshape(-1, dim)
                    items.append((doc, passages, passage_vecs, sentence_vecs))
                    if not fresh:  # the old version, or leftovers of a killed write, go first
                        chroma.delete_document(doc.id)
                chroma.add_documents(items)
                report.embedded += sum(len(texts) for _, _, texts, _ in plans)
                bar.update(len(plans))
                if len(cache) > 100_000:
                    cache.clear()
