"""The corpus folder: documents on disk and the manifest that describes them.

Flow: files + `sources.toml` -> `CorpusDocument` (metadata + extracted text + content hash),
which chunking turns into passages. `add_files` copies new documents in and records them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from assistant.errors import InputError
from assistant.fsutil import atomic_copy, atomic_write_text
from assistant.loaders import LOADERS, CorpusFileError, extract
from assistant.types import DocumentMeta, ExtractedText

if TYPE_CHECKING:
    from llama_index.core import Document

MANIFEST_NAME = "sources.toml"
LOADER_VERSION = 1
ADD_DIR = "documents"
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MANIFEST_HEADER = (
    "# The corpus manifest: one [[documents]] table per file.\n"
    "# Fields: id, file (relative to this folder), title, kind (article | source), author,\n"
    "# publisher, date, url, license, references. Files without an entry still index.\n\n"
)


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


# ---------------------------------------------------------------------------------------------
# The manifest.


@dataclass
class Manifest:
    """`sources.toml`: document entries keyed by file, plus glob patterns of files to leave out."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    def by_file(self) -> dict[str, dict[str, Any]]:
        return {str(e["file"]): e for e in self.entries if e.get("file")}


def read_manifest(corpus_dir: Path) -> Manifest:
    """The manifest of a corpus folder (empty when there is none)."""
    path = corpus_dir / MANIFEST_NAME
    if not path.exists():
        return Manifest()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"The corpus manifest {path} is not valid TOML: {exc}",
            "Fix the file (or move it away to index with metadata taken from the files).",
        ) from None
    entries = data.get("documents", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(
            f"The corpus manifest {path} must hold [[documents]] tables.",
            "See corpus/sources.toml in the project for the expected shape.",
        )
    seen: set[str] = set()
    for entry in entries:
        doc_id = entry.get("id")
        if doc_id is None:
            continue
        if not isinstance(doc_id, str) or not _ID_OK.match(doc_id):
            raise InputError(
                f"The corpus manifest {path} has an invalid id {doc_id!r}.",
                "Ids use letters, digits, '.', '_' and '-' (at most 128 characters).",
            )
        if doc_id in seen:
            raise InputError(f"The corpus manifest {path} uses the id '{doc_id}' twice.")
        seen.add(doc_id)
    exclude = data.get("exclude", [])
    return Manifest(entries=list(entries), exclude=[str(p) for p in exclude])


def write_manifest(corpus_dir: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    data: dict[str, Any] = {}
    if manifest.exclude:
        data["exclude"] = manifest.exclude
    data["documents"] = [
        {k: v for k, v in e.items() if v not in (None, "")} for e in manifest.entries
    ]
    atomic_write_text(corpus_dir / MANIFEST_NAME, _MANIFEST_HEADER + tomli_w.dumps(data))


# ---------------------------------------------------------------------------------------------
# Scanning a corpus folder.


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80] or "document"


def _title_from_file(path: Path) -> str:
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
    h.update(json.dumps(meta.to_dict(), sort_keys=True).encode())
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


def scan(corpus_dir: Path) -> CorpusScan:
    """Load every document of the corpus; files that cannot be loaded are listed as skipped."""
    if not corpus_dir.is_dir():
        raise InputError(
            f"No corpus folder at {corpus_dir}.",
            "Set ASSISTANT_CORPUS_DIR (or --corpus) to a folder of documents, "
            "or add documents with `assistant add PATH`.",
        )
    manifest = read_manifest(corpus_dir)
    entries = manifest.by_file()
    result = CorpusScan()
    used_ids = {e["id"] for e in manifest.entries if e.get("id")}
    files = list_files(corpus_dir, manifest)
    for rel in sorted(set(entries) - set(files)):
        result.skipped.append((rel, "listed in the manifest but the file is missing"))
    for rel in files:
        path = corpus_dir / rel
        try:
            extracted = extract(path)
            data = path.read_bytes()
        except CorpusFileError as exc:
            result.skipped.append((rel, str(exc)))
            continue
        entry = entries.get(rel, {})
        doc_id = entry.get("id") or _derive_id(rel, used_ids)
        used_ids.add(doc_id)
        meta = DocumentMeta.from_dict(
            {
                **{k: _as_text(v) for k, v in entry.items() if k != "references"},
                "references": [str(r) for r in entry.get("references", [])],
                "id": doc_id,
                "file": rel,
                "title": _as_text(entry.get("title")) or extracted.title or _title_from_file(path),
                "kind": _as_text(entry.get("kind")) or "source",
            }
        )
        result.documents.append(CorpusDocument(meta, extracted, content_hash(data, meta), path))
    return result


def _as_text(value: Any) -> str:
    """Manifest values as text: dates, numbers and None become plain strings."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _derive_id(rel: str, used: set[str]) -> str:
    base = slugify(rel.rsplit(".", 1)[0].rsplit("/", 1)[-1])
    if base not in used:
        return base
    base = slugify(rel.rsplit(".", 1)[0])
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


# ---------------------------------------------------------------------------------------------
# Adding documents.


@dataclass
class AddResult:
    added: list[str] = field(default_factory=list)  # relative paths in the corpus
    already: list[tuple[str, str]] = field(default_factory=list)  # (source path, corpus path)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)


def add_files(
    corpus_dir: Path,
    paths: list[Path],
    *,
    title: str | None = None,
    url: str | None = None,
    author: str | None = None,
    date: str | None = None,
    kind: str = "source",
) -> AddResult:
    """Copy files (or folders of them) into the corpus and record them in the manifest."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(
            f"No such file: {', '.join(missing)}", "Check the path and run `assistant add` again."
        )
    plan: list[tuple[Path, str]] = []  # (source file, name relative to the folder added)
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts):
                    plan.append((f, f"{path.name}/{f.relative_to(path).as_posix()}"))
        else:
            plan.append((path, path.name))
    if title and len(plan) > 1:
        raise InputError(
            "--title names one document, but this adds several files.",
            "Add the files one at a time to give each a title.",
        )
    corpus_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(corpus_dir)
    existing = {_sha(corpus_dir / rel): rel for rel in list_files(corpus_dir, manifest)}
    result = AddResult()
    used_ids = {e["id"] for e in manifest.entries if e.get("id")}
    new_entries = []
    for src, name in plan:
        try:
            extracted = extract(src)
        except CorpusFileError as exc:
            result.skipped.append((str(src), str(exc)))
            continue
        digest = _sha(src)
        if digest in existing:
            result.already.append((str(src), existing[digest]))
            continue
        rel = _free_name(corpus_dir, f"{ADD_DIR}/{name}")
        atomic_copy(src, corpus_dir / rel)
        existing[digest] = rel
        doc_id = _derive_id(rel, used_ids)
        used_ids.add(doc_id)
        entry: dict[str, Any] = {
            "id": doc_id,
            "file": rel,
            "title": title or extracted.title or _title_from_file(src),
            "kind": kind,
        }
        for key, value in (("author", author), ("date", date), ("url", url)):
            if value:
                entry[key] = value
        new_entries.append(entry)
        result.added.append(rel)
    if not result.added and not result.already and len(plan) == 1 and result.skipped:
        name, reason = result.skipped[0]
        raise InputError(
            f"Cannot add {name}: {reason}.", "Only text, Markdown, HTML and PDF files can be added."
        )
    if new_entries:
        manifest.entries.extend(new_entries)
        write_manifest(corpus_dir, manifest)
    return result


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _free_name(corpus_dir: Path, rel: str) -> str:
    candidate, n = rel, 2
    stem, dot, ext = rel.rpartition(".")
    if not dot:
        stem, ext = rel, ""
    while (corpus_dir / candidate).exists():
        candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        n += 1
    return candidate


__all__ = ["LOADERS", "CorpusFileError", "extract"]  # re-exported: loaders live in loaders.py
