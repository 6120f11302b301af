"""The persisted index as the rest of the assistant sees it: open the live generation for
reading, ask whether it is up to date, and bring it in line with the corpus under the lock.

The index folder (`index/` by default) holds:
  .lock          the write lock; its text names the process holding it
  CURRENT        the name of the live generation folder, replaced atomically
  gen-*/         index.json (format, settings, versions), state.json, chroma/
`assistant index --rebuild` builds a new generation and switches CURRENT only when it is done.
With a Chroma server the live generation is recorded in the server instead (see pointer.py).
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from assistant.config import Settings
from assistant.corpus import (
    LOADER_VERSION,
    file_fingerprints,
    files_unchanged,
    recorded_files,
    require_corpus,
)
from assistant.embedding import Embedder
from assistant.errors import AssistantError, IndexBusyError, IndexStateError
from assistant.fsutil import FileLock, LockHeld, atomic_write_json
from assistant.store.pointer import FORMAT_VERSION, REBUILD_HINT, generation_pointer
from assistant.store.snapshot import IndexSnapshot
from assistant.store.sync import IndexWriter, ProgressFactory, no_progress
from assistant.types import IndexReport


class IndexStore:
    """Opens, writes and rebuilds the index that `Settings` point at."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.pointer = generation_pointer(settings)
        self.root = self.pointer.root
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(
                self.settings.embed_model,
                self.settings.query_runtime,
                self.settings.encoder_dir,
                self.settings.encoder_precision,
            )
        return self._embedder

    def current_generation(self) -> str | None:
        return self.pointer.current()

    def exists(self) -> bool:
        return self.pointer.exists()

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

    # -- reading ----------------------------------------------------------------------------

    def open(self) -> IndexSnapshot:
        """Load the live generation for reading (no lock: writers never block readers)."""
        gen = self.current_generation()
        if not gen:
            raise IndexStateError(
                f"There is no index at {self.root} yet.", "Run `assistant index` to build it."
            )
        info = self.pointer.info(gen)
        self.check_compatible(info)
        try:
            chroma = self.pointer.chroma(gen)
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

    def _record_new_times(self, state: dict[str, Any]) -> None:
        """Files touched or copied with the same bytes are up to date, but each check reads
        them again until their new times are recorded: `index` (holding the lock) records them."""
        recorded = state.get("files") or {}
        now = file_fingerprints(self.settings.corpus_dir)
        if {rel: list(v) for rel, v in now.items()} == {r: v[:2] for r, v in recorded.items()}:
            return
        gen = self.current_generation()
        if gen:
            files = recorded_files(self.settings.corpus_dir)
            atomic_write_json(self.root / gen / "state.json", {**state, "files": files})

    def interrupted(self) -> bool:
        """Whether the last write to the live generation stopped before it finished."""
        state = self.state()
        return bool(state) and state.get("clean") is False

    def change_token(self, generation: str | None = None) -> tuple[Any, ...]:
        """Changes whenever a writer finishes; long-lived readers compare it to reload.
        Stats only (no reads): it runs before every question."""
        return self.pointer.change_token(generation)

    def is_up_to_date(self) -> bool:
        """True when the corpus files look exactly as at the last clean index run, read by
        the same loaders (cheap: no file is read)."""
        state = self.state()
        if not state.get("clean") or state.get("loader", 1) != LOADER_VERSION:
            return False
        try:
            info = self.pointer.info(self.current_generation() or "")
            self.check_compatible(info)
        except IndexStateError:
            return False
        return files_unchanged(self.settings.corpus_dir, state.get("files"))

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
            raise self._unwritable(exc) from None
        return lock

    def _unwritable(self, exc: OSError) -> IndexStateError:
        return IndexStateError(
            f"Cannot write the index at {self.root}: {exc.strerror}.",
            "Check the folder's permissions or set ASSISTANT_INDEX_DIR.",
        )

    def sync(self, progress: ProgressFactory = no_progress, rebuild: bool = False) -> IndexReport:
        """Bring the index in line with the corpus: embed new and edited documents, drop
        deleted ones. With `rebuild`, build a new generation and switch to it at the end."""
        started = time.perf_counter()
        require_corpus(self.settings.corpus_dir)  # before the index folder is made
        lock = self._acquire("assistant index --rebuild" if rebuild else "assistant index")
        try:
            # Half-built generations of a killed rebuild: no one else can be writing them now.
            for leftover in self.root.glob("gen-*.tmp"):
                shutil.rmtree(leftover, ignore_errors=True)
            if not rebuild and self.is_up_to_date():
                state = self.state()
                self._record_new_times(state)
                report = IndexReport(unchanged=sorted(state.get("docs", {})))
                report.passages = int(state.get("passages", 0))
                report.skipped = [tuple(s) for s in state.get("skipped", [])]  # type: ignore[misc]
                report.seconds = time.perf_counter() - started
                return report
            writer = IndexWriter(self.settings, self.pointer, lambda: self.embedder)
            gen = self.current_generation()
            if rebuild or not gen or not self.pointer.complete(gen):
                report = writer.build(progress)
            else:
                self.check_compatible(self.pointer.info(gen))
                (self.root / gen).mkdir(parents=True, exist_ok=True)
                report = writer.update(gen, progress)
            report.seconds = time.perf_counter() - started
            return report
        except PermissionError as exc:  # the lock could be taken, the folder not written
            raise self._unwritable(exc) from None
        finally:
            lock.release()


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
