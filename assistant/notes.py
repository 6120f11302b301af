"""The corpus's NOTES.md: article sentences that a source contradicts, qualifies or cannot
confirm. An answer that cites such a sentence carries the note on its citation.

An entry reads:

    ## Heading
    - Article:
      > exact quote of an article sentence
    - Brief: `brief-id`
    - Verdict: contradicts | qualifies | cannot confirm | confirms   (optional)
    - Public record: text, which may go on over indented lines
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.text import normalize_for_match
from assistant.types import Answer, CitationNote, StoredDocument

NOTES_NAME = "NOTES.md"
VERDICTS = ("contradicts", "qualifies", "cannot confirm", "confirms")
_FIELD = re.compile(r"^\s*[-*]\s+([A-Za-z][A-Za-z ]*?):\s*(.*)$")


@dataclass(frozen=True)
class Note:
    """One entry of NOTES.md."""

    heading: str
    quotes: tuple[str, ...]
    brief_id: str
    verdict: str
    public_record: str


@dataclass(frozen=True)
class NoteSpan:
    """Where a note's quote lies in a document's stored text."""

    note: Note
    doc_id: str
    start: int
    end: int


def parse_notes(text: str) -> list[Note]:
    """The entries of a NOTES.md text; a section without an article quote is not an entry."""
    notes = []
    for block in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        fields: dict[str, list[str]] = {}
        quotes: list[str] = []
        current: str | None = None
        for line in body.split("\n"):
            stripped = line.strip()
            match = _FIELD.match(line)
            if match:
                current = match[1].strip().lower()
                fields[current] = [match[2].strip()] if match[2].strip() else []
            elif stripped.startswith(">"):
                quotes.append(stripped[1:].strip())
            elif stripped and current is not None and line[:1].isspace():
                fields[current].append(stripped)
            elif not stripped:
                current = None
        briefs = re.findall(r"`([^`]+)`", " ".join(fields.get("brief", [])))
        if not quotes or not briefs:
            continue
        verdict = " ".join(" ".join(fields.get("verdict", [])).lower().split()).strip(" .")
        notes.append(
            Note(
                heading=heading.strip(),
                quotes=tuple(quotes),
                brief_id=briefs[0],
                verdict=verdict if verdict in VERDICTS else "",
                public_record=" ".join(" ".join(fields.get("public record", [])).split()),
            )
        )
    return notes


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    return normalize_for_match(unicodedata.normalize("NFKC", ch)) or (" " if ch.isspace() else "")


@lru_cache(maxsize=16)
def _folded(text: str) -> tuple[str, list[int]]:
    """`normalize_for_match(text)` with, for each of its characters, the offset in `text` of
    the character it came from (kept for the last few texts: every quote of a note is looked
    for in the same article)."""
    chars: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        for c in _fold_char(ch):
            chars.append((c, i))
    out: list[tuple[str, int]] = []
    for c, i in chars:  # whitespace runs -> one space; none around a hyphen
        if c == " " and (not out or out[-1][0] in " -"):
            continue
        if c == "-" and out and out[-1][0] == " ":
            out.pop()
        out.append((c, i))
    while out and out[-1][0] == " ":
        out.pop()
    return "".join(c for c, _ in out), [i for _, i in out]


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """The span of `text` that reads as `quote` once quotes, dashes, case and whitespace are
    folded; None when it is not there."""
    needle = normalize_for_match(quote)
    if not needle:
        return None
    folded, offsets = _folded(text)
    at = folded.find(needle)
    if at < 0:
        return None
    return offsets[at], offsets[at + len(needle) - 1] + 1


_cache: dict[tuple[object, ...], list[NoteSpan]] = {}
_cache_lock = threading.Lock()


def load_notes(corpus_dir: Path) -> list[Note]:
    """The notes of a corpus folder; none when it has no NOTES.md or it cannot be read."""
    try:
        return parse_notes((corpus_dir / NOTES_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


def note_spans(corpus_dir: Path, docs: Mapping[str, StoredDocument]) -> list[NoteSpan]:
    """Every note's quotes located in the stored text of the articles (cached until NOTES.md
    or an article changes)."""
    path = corpus_dir / NOTES_NAME
    try:
        st = path.stat()
    except OSError:
        return []
    articles = sorted((d.id, d.content_hash) for d in docs.values() if d.meta.kind == "article")
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(articles))
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    spans = []
    for note in load_notes(corpus_dir):
        for quote in note.quotes:
            for doc_id, _ in articles:
                span = find_quote(docs[doc_id].text, quote)
                if span is not None:
                    spans.append(NoteSpan(note, doc_id, *span))
    with _cache_lock:
        _cache.clear()  # one corpus at a time is the common case; keep memory flat
        _cache[key] = spans
    return spans


def citation_note(note: Note, docs: Mapping[str, StoredDocument]) -> CitationNote:
    brief = docs.get(note.brief_id)
    return CitationNote(
        heading=note.heading,
        verdict=note.verdict,
        public_record=note.public_record,
        brief_id=note.brief_id,
        brief_title=brief.meta.title if brief else note.brief_id,
    )


def attach_notes(answer: Answer, docs: Mapping[str, StoredDocument], corpus_dir: Path) -> Answer:
    """Put on each citation of an article sentence the note (if any) whose quote it overlaps."""
    if not answer.citations:
        return answer
    spans = note_spans(corpus_dir, docs)
    for c in answer.citations:
        hit = _first_overlap(spans, c.doc_id, c.start, c.end)
        c.note = citation_note(hit.note, docs) if hit else None
    return answer


def _first_overlap(spans: Iterable[NoteSpan], doc_id: str, start: int, end: int) -> NoteSpan | None:
    return next((s for s in spans if s.doc_id == doc_id and s.start < end and start < s.end), None)
