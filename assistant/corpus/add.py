"""Adding documents: copy files (or folders of them) into the corpus and record them in the
manifest."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.corpus.loaders import CorpusFileError, extract
from assistant.corpus.manifest import is_safe_url, read_manifest, write_manifest
from assistant.corpus.scanning import derive_id, file_digest, list_files, title_from_file
from assistant.errors import InputError
from assistant.fsutil import atomic_copy

ADD_DIR = "documents"


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
    if url and not (is_safe_url(url) and re.match(r"(?i)^https?://[^\s/]+", url.strip())):
        raise InputError(
            f"--url {url!r} is not an http(s) link.",
            "Give the address where the document can be read, such as https://example.org/report.",
        )
    if date and not _is_date(date):
        raise InputError(
            f"--date {date!r} is not a date.",
            "Write it as YYYY-MM-DD, YYYY-MM or YYYY, for example --date 2024-03-01.",
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
    files = list_files(corpus_dir, manifest)
    existing = {file_digest(corpus_dir / rel): rel for rel in files}
    result = AddResult()
    used_ids = {e["id"] for e in manifest.entries if e.get("id")}
    listed = manifest.by_file()
    for rel in files:  # the ids files without one in the manifest go by (derived) stay theirs
        if not listed.get(rel, {}).get("id"):
            used_ids.add(derive_id(rel, used_ids))
    new_entries = []
    for src, name in plan:
        try:
            extracted = extract(src)
        except CorpusFileError as exc:
            result.skipped.append((str(src), str(exc)))
            continue
        digest = file_digest(src)
        if digest in existing:
            result.already.append((str(src), existing[digest]))
            continue
        rel = _free_name(corpus_dir, f"{ADD_DIR}/{name}")
        atomic_copy(src, corpus_dir / rel)
        existing[digest] = rel
        doc_id = derive_id(rel, used_ids)
        used_ids.add(doc_id)
        entry: dict[str, Any] = {
            "id": doc_id,
            "file": rel,
            "title": title or extracted.title or title_from_file(src),
            "kind": kind,
        }
        for key, value in (("author", author), ("date", date), ("url", url)):
            if value:
                entry[key] = value
        new_entries.append(entry)
        result.added.append(rel)
    if not result.added and not result.already and len(plan) == 1 and result.skipped:
        name, reason = result.skipped[0]
        if reason.startswith("unsupported"):
            hint = "Only text, Markdown, HTML and PDF files can be added."
        elif reason.startswith("empty"):
            hint = (
                "Add a file with text in it (a scanned PDF has none until it is run through OCR)."
            )
        else:
            hint = "Add a readable file of text, Markdown, HTML or PDF."
        raise InputError(f"Cannot add {name}: {reason}.", hint)
    if new_entries:
        manifest.entries.extend(new_entries)
        write_manifest(corpus_dir, manifest)
    return result


def _free_name(corpus_dir: Path, rel: str) -> str:
    candidate, n = rel, 2
    stem, dot, ext = rel.rpartition(".")
    if not dot:
        stem, ext = rel, ""
    while (corpus_dir / candidate).exists():
        candidate = f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}"
        n += 1
    return candidate


def _is_date(text: str) -> bool:
    """A real day, month or year: "2024-03-01", "2024-03" or "2024"."""
    match = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text.strip())
    if match is None:
        return False
    try:
        datetime.date(int(match[1]), int(match[2] or 1), int(match[3] or 1))
    except ValueError:
        return False
    return True
