"""Which generation of the index is live, and where its collections and local files live.

The embedded store keeps the live generation's name in a CURRENT file of the index folder.
With a Chroma server (`chroma_url`) the live generation and its info are recorded in the
server, so every process (on any machine) sharing the server sees the same index; this process
keeps its local files (lock, per-generation state) in `servers/<host-port>/` of the index
folder, so that switching modes, or pointing two servers at one folder, never touches the other
mode's index.
"""

from __future__ import annotations

import builtins
import json
import re
import time
from abc import ABC, abstractmethod
from contextlib import suppress
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError, IndexStateError
from assistant.fsutil import atomic_write_text
from assistant.store.chroma import ChromaIndex

FORMAT_VERSION = 2
REBUILD_HINT = "Run `assistant index --rebuild` to build it again from the corpus."
# What CURRENT may hold: a generation folder's name, never a path.
_GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9_-]+")


def local_root(settings: Settings) -> Path:
    """Where this index's local files live: the index folder for the embedded store, a folder
    of its own per server address in server mode."""
    root = Path(settings.index_dir)
    if not settings.chroma_url:
        return root
    address = re.sub(r"^[a-z]+://", "", settings.chroma_url.strip().lower()).rstrip("/")
    return root / "servers" / (re.sub(r"[^a-z0-9.]+", "-", address).strip("-") or "server")


class GenerationPointer(ABC):
    """The live generation of one index, and the Chroma collections of each generation.

    Every generation has a local folder `root/<generation>/` holding index.json (format,
    settings, versions) and state.json; the implementations differ in where the name of the
    live one is kept and where the collections are."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @abstractmethod
    def current(self) -> str | None:
        """The live generation's name, or None when there is no index yet."""

    @abstractmethod
    def set(self, generation: str, info: dict[str, Any]) -> None:
        """Make `generation` (complete, with this index.json `info`) the live one."""

    @abstractmethod
    def change_token(self, generation: str | None) -> tuple[Any, ...]:
        """A value that changes whenever a writer finishes (cheap: it runs before every
        question)."""

    @abstractmethod
    def chroma(self, generation: str, folder: Path | None = None) -> ChromaIndex:
        """The collections of a generation (`folder`: its local folder while it is built)."""

    def exists(self) -> bool:
        """Whether there is a live generation, complete enough to be opened."""
        generation = self.current()
        if not generation:
            return False
        return self.complete(generation)

    def complete(self, generation: str) -> bool:
        """Whether this generation was fully built (its index.json was written)."""
        return (self.root / generation / "index.json").exists()

    def info(self, generation: str) -> dict[str, Any]:
        """The index.json of a generation: format, settings, library versions."""
        path = self.root / generation / "index.json"
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

    # The embedded store keeps each generation's collections in the generation's folder,
    # which the writer creates and removes itself: these three have nothing more to do there.

    def prepare(self, generation: str) -> None:
        """Clear what a killed build of this generation may have left in the store."""
        return None

    def changed_in_place(self, chroma: ChromaIndex) -> None:
        """Tell other readers that the live generation was updated without switching."""
        return None

    def collect(self, keep: builtins.set[str]) -> None:
        """Remove the collections of generations not in `keep`."""
        return None


class FilePointer(GenerationPointer):
    """The embedded store: CURRENT names the live generation folder, replaced atomically;
    each generation's collections live in its folder's chroma/."""

    def current(self) -> str | None:
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

    def set(self, generation: str, info: dict[str, Any]) -> None:
        atomic_write_text(self.root / "CURRENT", generation + "\n")

    def change_token(self, generation: str | None) -> tuple[Any, ...]:
        out: list[Any] = []
        names = ["CURRENT"] + ([f"{generation}/state.json"] if generation else [])
        for name in names:
            try:
                st = (self.root / name).stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def chroma(self, generation: str, folder: Path | None = None) -> ChromaIndex:
        return ChromaIndex.embedded((folder or self.root / generation) / "chroma")


class ServerPointer(GenerationPointer):
    """A Chroma server: the live generation and its info are a record in the server, and each
    generation's collections are named `assistant-<generation>-*` there. A local CURRENT is
    still written, after the server's record."""

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root)
        self.url = url
        self._record: tuple[float, dict[str, Any]] | None = None

    def record(self, max_age: float = 0.0) -> dict[str, Any]:
        """The server's record of the live generation, fetched again when older than
        `max_age` seconds ({} when there is none)."""
        now = time.monotonic()
        cached = self._record
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
        meta = ChromaIndex.remote(self.url).pointer()
        self._record = (now, meta)
        return meta

    def current(self) -> str | None:
        return self.record().get("current")

    def complete(self, generation: str) -> bool:
        return True  # the server's record is written only once a generation is complete

    def info(self, generation: str) -> dict[str, Any]:
        record = self.record()
        if record.get("current") == generation and record.get("info"):
            return dict(json.loads(record["info"]))
        return super().info(generation)

    def set(self, generation: str, info: dict[str, Any]) -> None:
        ChromaIndex.remote(self.url).set_pointer(generation, info)
        self._record = None
        atomic_write_text(self.root / "CURRENT", generation + "\n")

    def change_token(self, generation: str | None) -> tuple[Any, ...]:
        record = self.record(max_age=5.0)
        return (record.get("current"), record.get("updated"))

    def chroma(self, generation: str, folder: Path | None = None) -> ChromaIndex:
        return ChromaIndex.remote(self.url, prefix=f"assistant-{generation}-")

    def prepare(self, generation: str) -> None:
        self.chroma(generation).drop()

    def changed_in_place(self, chroma: ChromaIndex) -> None:
        chroma.touch_pointer()

    def collect(self, keep: builtins.set[str]) -> None:
        with suppress(AssistantError):
            ChromaIndex.remote(self.url).drop_generations(keep)


def generation_pointer(settings: Settings) -> GenerationPointer:
    """The pointer of the index that `settings` point at."""
    root = local_root(settings)
    return ServerPointer(root, settings.chroma_url) if settings.chroma_url else FilePointer(root)
