"""Scanning a corpus folder: every document file, with its manifest entry, becomes a
`CorpusDocument` (metadata + extracted text + content hash), which chunking turns into passages."""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus.loaders import CorpusFileError, extract
from assistant.corpus.manifest import MANIFEST_NAME, Manifest, is_safe_url, read_manifest
from assistant.errors import InputError
from assistant.types import DocumentMeta, ExtractedText

if TYPE_CHECKING:
    from llama_index.core import Document

# 2: a sentence may end in a possessive ("of Russia's."); 3: PDF pages; 4: UTF-16 text,
# Markdown front matter, sentences ending in "。", "am 13. November" inside one sentence,
# over-long runs of words halved at whitespace.
LOADER_VERSION = 4


class CorpusWarning(UserWarning):
    """Something in the corpus was worked around (a legacy encoding, an unsafe URL)."""


@dataclass
class CorpusDocument:
    """One loaded document: its metadata, its text and the hash that identifies this version."""

    meta: DocumentMeta
    extracted: ExtractedText
    content_hash: str
    path: Path

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def text(self) -> str:
        return self.extracted.text

    def as_llama_document(self) -> Document:
        """The document as a llama-index `Document`, metadata included."""
        from llama_index.core import Document

        meta = {k: v for k, v in self.meta.to_dict().items() if k != "references"}
        return Document(text=self.text, id_=self.id, metadata=meta)


@dataclass
class CorpusScan:
    """The documents of a corpus and the files that were skipped, with reasons."""

    documents: list[CorpusDocument] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file, what was done)

    def warn(self, rel: str, message: str) -> None:
        self.warnings.append((rel, message))
        warnings.warn(f"{rel}: {message}", CorpusWarning, stacklevel=3)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80] or "document"


def title_from_file(path: Path) -> str:
    """A title made from the file name, for a document that names none."""
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize() or path.name


def _is_excluded(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def list_files(corpus_dir: Path, manifest: Manifest) -> list[str]:
    """Relative paths of the candidate document files, sorted, hidden and excluded ones left out."""
    out = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if rel == MANIFEST_NAME or _is_excluded(rel, manifest.exclude):
            continue
        if path.is_file() or path.is_symlink():
            out.append(rel)
    return out


def content_hash(data: bytes, meta: DocumentMeta) -> str:
    h = hashlib.sha256()
    h.update(f"loader-{LOADER_VERSION}\n".encode())
    described = meta.to_dict()
    if not described["current_to"]:
        del described["current_to"]  # documents without one keep the hash they had before it
    h.update(json.dumps(described, sort_keys=True).encode())
    h.update(data)
    return h.hexdigest()


def file_fingerprints(corpus_dir: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every candidate file: a cheap way to see that nothing changed."""
    manifest = read_manifest(corpus_dir)
    out: dict[str, tuple[int, int]] = {}
    for rel in list_files(corpus_dir, manifest):
        try:
            st = (corpus_dir / rel).stat()
        except OSError:
            continue
        out[rel] = (st.st_size, st.st_mtime_ns)
    manifest_path = corpus_dir / MANIFEST_NAME
    if manifest_path.exists():
        st = manifest_path.stat()
        out[MANIFEST_NAME] = (st.st_size, st.st_mtime_ns)
    return out


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes ("" when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def recorded_files(corpus_dir: Path) -> dict[str, list[Any]]:
    """What an index run records of the corpus files: [size, mtime_ns, SHA-256] of each,
    so a later check that finds a file touched or copied (a new time) but the same bytes
    knows nothing changed (`files_unchanged`)."""
    return {
        rel: [size, mtime, file_digest(corpus_dir / rel)]
        for rel, (size, mtime) in file_fingerprints(corpus_dir).items()
    }


def files_unchanged(corpus_dir: Path, recorded: object) -> bool:
    """Whether the corpus files are those `recorded_files` recorded: same names and sizes,
    and the same times or else the same bytes (only files with a new time are read)."""
    if not isinstance(recorded, dict):
        return False
    now = file_fingerprints(corpus_dir)
    if set(now) != set(recorded):
        return False
    for rel, (size, mtime) in now.items():
        old = recorded[rel]
        if not isinstance(old, list) or len(old) != 3 or old[0] != size:
            return False
        if old[1] != mtime and file_digest(corpus_dir / rel) != old[2]:
            return False
    return True


def require_corpus(corpus_dir: Path) -> None:
    """InputError unless `corpus_dir` is a folder."""
    if not corpus_dir.is_dir():
        raise InputError(
            f"No corpus folder at {corpus_dir}.",
            "Set ASSISTANT_CORPUS_DIR (or --corpus) to a folder of documents, "
            "or add documents with `assistant add PATH`.",
        )


def scan(corpus_dir: Path) -> CorpusScan:
    """Load every document of the corpus; files that cannot be loaded are listed as skipped."""
    require_corpus(corpus_dir)
    manifest = read_manifest(corpus_dir)
    entries = manifest.by_file()
    result = CorpusScan()
    used_ids = {e["id"] for e in manifest.entries if e.get("id")}
    files = list_files(corpus_dir, manifest)
    for rel in sorted(set(entries) - set(files)):
        result.skipped.append(
            (
                rel,
                f"listed in {MANIFEST_NAME} but the file is missing; if it was moved or renamed, "
                "change its file = line there to keep its id, title and details",
            )
        )
    root = corpus_dir.resolve()
    for rel in files:
        path = corpus_dir / rel
        if not _inside(path, root):
            result.skipped.append((rel, "a link to a file outside the corpus folder (not indexed)"))
            continue
        try:
            extracted = extract(path)
            data = path.read_bytes()
        except CorpusFileError as exc:
            result.skipped.append((rel, str(exc)))
            continue
        for message in extracted.warnings:
            result.warn(rel, message)
        # The manifest's word first, then what the file says of itself (front matter).
        entry = {**dict(extracted.about), **entries.get(rel, {})}
        url = _as_text(entry.get("url"))
        if url and not is_safe_url(url):
            result.warn(rel, f"the url {url!r} is not an http(s) link; left out")
            entry["url"] = ""
        doc_id = entry.get("id") or derive_id(rel, used_ids)
        used_ids.add(doc_id)
        meta = DocumentMeta.from_dict(
            {
                **{k: _as_text(v) for k, v in entry.items() if k != "references"},
                "references": [str(r) for r in entry.get("references", [])],
                "id": doc_id,
                "file": rel,
                "title": _as_text(entry.get("title")) or extracted.title or title_from_file(path),
                "kind": _as_text(entry.get("kind")) or "source",
            }
        )
        result.documents.append(CorpusDocument(meta, extracted, content_hash(data, meta), path))
    return result


def _inside(path: Path, root: Path) -> bool:
    """Whether a corpus file, links followed, is inside the corpus folder."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a loop of links
        return False
    return resolved == root or root in resolved.parents


def _as_text(value: Any) -> str:
    """Manifest values as text: dates, numbers and None become plain strings."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def derive_id(rel: str, used: set[str]) -> str:
    """An id for a file without one in the manifest: its name, or its path when that is taken."""
    base = slugify(rel.rsplit(".", 1)[0].rsplit("/", 1)[-1])
    if base not in used:
        return base
    base = slugify(rel.rsplit(".", 1)[0])
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
