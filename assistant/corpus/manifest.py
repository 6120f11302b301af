"""The corpus manifest, `sources.toml`: document entries keyed by file, read and written with
their checks (ids, `current_to` dates, safe links)."""

from __future__ import annotations

import datetime
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tomli_w

from assistant.errors import InputError
from assistant.fsutil import atomic_write_text
from assistant.scope import KINDS

MANIFEST_NAME = "sources.toml"
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MANIFEST_HEADER = (
    "# The corpus manifest: one [[documents]] table per file.\n"
    "# Fields: id, file (relative to this folder), title, kind (article | source), author,\n"
    "# publisher, date, url, license, references, current_to (YYYY-MM or YYYY-MM-DD: how\n"
    "# recent the facts are). Files without an entry still index.\n\n"
)
_CURRENT_TO = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
SAFE_URL_SCHEMES = frozenset({"http", "https"})


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
    unknown = sorted(set(data) - {"documents", "exclude"})
    if unknown:  # a misspelt [[document]] would otherwise leave every entry unread
        close = difflib.get_close_matches(unknown[0], ["documents", "exclude"], n=1)
        raise InputError(
            f"The corpus manifest {path} has an unknown key or table '{unknown[0]}'.",
            (f"Did you mean '{close[0]}'? " if close else "")
            + "A manifest holds [[documents]] tables and an optional exclude list.",
        )
    entries = data.get("documents", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(
            f"The corpus manifest {path} must hold [[documents]] tables.",
            "See corpus/sources.toml in the project for the expected shape.",
        )
    for entry in entries:
        if not isinstance(entry.get("file"), str) or not entry["file"].strip():
            name = f"'{entry['id']}'" if isinstance(entry.get("id"), str) else "an entry"
            raise InputError(
                f"The corpus manifest {path} lists {name} without a file.",
                'Each [[documents]] table names its file, e.g. file = "documents/report.pdf".',
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
        kind = entry.get("kind")
        if kind is not None and kind not in KINDS:
            name = entry.get("id") or entry.get("file") or "an entry without id"
            raise InputError(
                f"The corpus manifest {path} gives '{name}' the kind {kind!r}.",
                f"A document's kind is one of: {', '.join(KINDS)}.",
            )
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
