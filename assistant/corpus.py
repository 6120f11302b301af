"""The corpus folder: documents on disk and the manifest that describes them.

Flow: files + `sources.toml` -> `CorpusDocument` (metadata + extracted text + content hash),
which chunking turns into passages. `add_files` copies new documents in and records them.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import re
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

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
    "# publisher, date, url, license, references, current_to (YYYY-MM or YYYY-MM-DD: how\n"
    "# recent the facts are). Files without an entry still index.\n\n"
)
_CURRENT_TO = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
SAFE_URL_SCHEMES = frozenset({"http", "https"})


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
    for entry in entries:
        if entry.get("current_to") not in (None, ""):
            _check_current_to(path, entry)
    exclude = data.get("exclude", [])
    return Manifest(entries=list(entries), exclude=[str(p) for p in exclude])


def _check_current_to(path: Path, entry: dict[str, Any]) -> None:
    """`current_to` must be a real month or day: "2025-11" or "2025-11-30"."""
    value = entry["current_to"]
    text = value.isoformat() if isinstance(value, datetime.date) else value
    match = _CURRENT_TO.match(text) if isinstance(text, str) else None
    ok = False
    if match:
        year, month, day = int(match[1]), int(match[2]), int(match[3] or 1)
        try:
            datetime.date(year, month, day)
            ok = True
        except ValueError:
            ok = False
    if not ok:
        name = entry.get("id") or entry.get("file") or "an entry without id"
        raise InputError(
            f"The corpus manifest {path} has an invalid current_to {value!r} for '{name}'.",
            'Write it as "YYYY-MM" or "YYYY-MM-DD", for example current_to = "2025-11".',
        )


def is_safe_url(url: str) -> bool:
    """False for a URL with a scheme other than http(s), such as javascript:, data: or
    vbscript: (whitespace and control characters inside the scheme do not hide it)."""
    squashed = re.sub(r"[\x00-\x20\x7f]+", "", url)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", squashed):
        return True  # no scheme: shown as plain text, never as a link
    try:
        scheme = urlparse(squashed).scheme.lower()
    except ValueError:
        return False
    return scheme in SAFE_URL_SCHEMES


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
        entry = dict(entries.get(rel, {}))
        url = _as_text(entry.get("url"))
        if url and not is_safe_url(url):
            result.warn(rel, f"the manifest's url {url!r} is not an http(s) link; left out")
            entry["url"] = ""
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
    if url and not is_safe_url(url):
        raise InputError(
            f"--url {url!r} is not an http(s) link.",
            "Give the address where the document can be read, such as https://example.org/report.",
        )
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
