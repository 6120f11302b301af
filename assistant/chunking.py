"""Documents -> passages that follow paragraphs and sentences, with exact character offsets.

Every passage satisfies `document_text[p.start:p.end] == p.text`, stays within the embedding
model's token budget, never crosses a heading, and carries the heading above it as `section`.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.config import ChunkSettings
from assistant.text import split_sentences
from assistant.types import ExtractedText, Heading, Passage

TokenCounter = Callable[[Sequence[str]], list[int]]

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_LIST_ITEM = re.compile(r"\s*(?:[-*+•]|\d{1,3}[.)])\s+")


@dataclass(frozen=True)
class _Region:
    start: int
    end: int
    section: str


def passage_id(doc_id: str, text: str, occurrence: int = 0) -> str:
    """A stable id from the document id and the passage's own text."""
    digest = hashlib.sha1(f"{occurrence}\n{text}".encode()).hexdigest()[:10]
    return f"{doc_id}:{digest}"


def _regions(text: str, headings: Sequence[Heading], skip: set[str]) -> list[_Region]:
    """Spans of text between headings, each with its section path; skipped sections left out."""
    out: list[_Region] = []
    stack: list[Heading] = []
    cursor = 0
    current = ""
    skipping = False
    for h in sorted(headings, key=lambda h: h.start):
        if not skipping and h.start > cursor:
            out.append(_Region(cursor, h.start, current))
        while stack and stack[-1].level >= h.level:
            stack.pop()
        stack.append(h)
        current = " › ".join(x.text for x in stack if x.level >= 2)
        skipping = any(x.text.strip().lower().rstrip(":") in skip for x in stack)
        cursor = h.end
    if not skipping and cursor < len(text):
        out.append(_Region(cursor, len(text), current))
    return out


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Paragraph spans inside [start, end): blank-line blocks, or single lines when a block is
    written one paragraph per line (long lines) or as a list."""
    spans: list[tuple[int, int]] = []
    pos = start
    chunk = text[start:end]
    pieces = []
    last = 0
    for m in _BLANK_LINES.finditer(chunk):
        pieces.append((start + last, start + m.start()))
        last = m.end()
    pieces.append((start + last, end))
    for s, e in pieces:
        block = text[s:e]
        if not block.strip():
            continue
        lines = block.split("\n")
        nonblank = [ln for ln in lines if ln.strip()]
        per_line = len(nonblank) > 1 and (
            statistics.median(len(ln) for ln in nonblank) >= 150
            or sum(bool(_LIST_ITEM.match(ln)) for ln in nonblank) >= len(nonblank) / 2
        )
        if per_line:
            pos = s
            for ln in lines:
                if ln.strip():
                    spans.append((pos, pos + len(ln)))
                pos += len(ln) + 1
        else:
            spans.append((s, e))
    # A list marker ("- ", "2. ") is layout, not text to quote.
    out = []
    for s, e in spans:
        marker = _LIST_ITEM.match(text, s, e)
        if marker and marker.end() < e:
            s = marker.end()
        out.append((s, e))
    return out


def _split_long(
    text: str, span: tuple[int, int], tokens: int, budget: int
) -> list[tuple[int, int]]:
    """Cut a sentence longer than the budget into word-boundary pieces of about equal size."""
    s, e = span
    pieces = math.ceil(tokens / budget) + 1  # word-pieces outnumber words; err on the short side
    words = [(m.start() + s, m.end() + s) for m in re.finditer(r"\S+", text[s:e])]
    per = max(1, math.ceil(len(words) / pieces))
    return [
        (words[i][0], words[min(i + per, len(words)) - 1][1]) for i in range(0, len(words), per)
    ]


def _fit(
    text: str, spans: list[tuple[int, int]], budget: int, count: TokenCounter
) -> list[tuple[int, int]]:
    """Halve any piece still over the budget: at the space nearest its middle, or at a
    character when it has none (a "word" of 300 digits)."""
    out: list[tuple[int, int]] = []
    todo = list(spans)
    while todo:
        s, e = todo.pop(0)
        if e - s > 1 and count([text[s:e]])[0] > budget:
            todo[:0] = list(_halves(text, s, e))
        else:
            out.append((s, e))
    return out


def _halves(text: str, s: int, e: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """text[s:e] in two: around the whitespace nearest its middle, else at the middle."""
    mid = (s + e) // 2
    gaps = [m.span() for m in re.finditer(r"\s+", text[s + 1 : e - 1])]
    if not gaps:
        return (s, mid), (mid, e)
    a, b = min(gaps, key=lambda g: abs(s + 1 + g[0] - mid))
    return (s, s + 1 + a), (s + 1 + b, e)


def chunk_document(
    doc_id: str, extracted: ExtractedText, settings: ChunkSettings, count_tokens: TokenCounter
) -> list[Passage]:
    """Cut one document into passages."""
    text = extracted.text
    skip = {s.lower() for s in settings.skip_sections}
    budget = settings.max_tokens
    units: list[tuple[int, int, int, str, int]] = []  # (start, end, tokens, section, paragraph)
    para_no = 0
    for region in _regions(text, extracted.headings, skip):
        for ps, pe in _paragraphs(text, region.start, region.end):
            sentences = split_sentences(text[ps:pe], ps)
            counts = count_tokens([text[s:e] for s, e in sentences])
            for (s, e), n in zip(sentences, counts, strict=True):
                if n > budget:
                    pieces = _fit(text, _split_long(text, (s, e), n, budget), budget, count_tokens)
                    for (a, b), m in zip(
                        pieces, count_tokens([text[a:b] for a, b in pieces]), strict=True
                    ):
                        units.append((a, b, m, region.section, para_no))
                else:
                    units.append((s, e, n, region.section, para_no))
            para_no += 1
    groups = _pack(units, budget, settings.min_tokens)
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    for ordinal, group in enumerate(groups):
        start, end = group[0][0], group[-1][1]
        body = text[start:end]
        occurrence = seen.get(body, 0)
        seen[body] = occurrence + 1
        passages.append(
            Passage(
                id=passage_id(doc_id, body, occurrence),
                doc_id=doc_id,
                start=start,
                end=end,
                text=body,
                section=group[0][3],
                ordinal=ordinal,
                sentences=tuple((u[0], u[1]) for u in group),
            )
        )
    return passages


def _pack(
    units: list[tuple[int, int, int, str, int]], budget: int, min_tokens: int
) -> list[list[tuple[int, int, int, str, int]]]:
    """Group sentences into passages: paragraphs split evenly when over budget, short
    paragraphs joined to the next one in the same section."""
    by_para: list[list[tuple[int, int, int, str, int]]] = []
    for u in units:
        if by_para and by_para[-1][0][4] == u[4]:
            by_para[-1].append(u)
        else:
            by_para.append([u])
    groups: list[list[tuple[int, int, int, str, int]]] = []
    for para in by_para:
        total = sum(u[2] for u in para)
        target = total / math.ceil(total / budget) if total > budget else budget
        current: list[tuple[int, int, int, str, int]] = []
        size = 0
        for u in para:
            if current and (size + u[2] > budget or size >= target):
                groups.append(current)
                current, size = [], 0
            current.append(u)
            size += u[2]
        if current:
            groups.append(current)
    merged: list[list[tuple[int, int, int, str, int]]] = []
    for group in groups:
        if merged:
            prev = merged[-1]
            prev_size = sum(u[2] for u in prev)
            size = sum(u[2] for u in group)
            same_section = prev[0][3] == group[0][3]
            if same_section and prev_size < min_tokens and prev_size + size <= budget:
                prev.extend(group)
                continue
        merged.append(list(group))
    return merged
