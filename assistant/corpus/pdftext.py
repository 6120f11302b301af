"""PDF text in reading order, with headings: lines are rebuilt from the positioned text that
pypdf reports, two-column pages are read column by column, headings are found from a larger or
bolder font (or, failing that, as short unpunctuated lines before a paragraph), a word
broken across lines with a hyphen is joined again, and the offset where each page's text starts
is kept (for citing a page)."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.types import Heading

_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’)\]]*$")
_CHAR_WIDTH = 0.5  # average glyph width in ems: enough to tell a line's rough extent


@dataclass
class _Line:
    text: str
    x: float
    y: float
    size: float
    bold: bool
    page: int
    column: int = 0  # 0 single column or left, 1 right

    @property
    def end_x(self) -> float:
        return self.x + len(self.text) * self.size * _CHAR_WIDTH

    @property
    def key(self) -> tuple[float, bool]:
        return (round(self.size * 2) / 2, self.bold)


@dataclass
class _Block:
    lines: list[_Line] = field(default_factory=list)
    level: int = 0  # heading level; 0 for a paragraph


def _matrix(tm: Sequence[float], cm: Sequence[float]) -> list[float]:
    a, b, c, d, e, f = (float(v) for v in tm)
    a2, b2, c2, d2, e2, f2 = (float(v) for v in cm)
    return [
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    ]


def page_lines(page: Any, page_no: int) -> list[_Line]:
    """The text lines of one page in content order, with position, size and weight."""
    lines: list[_Line] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if not text or not text.strip():
            return
        m = _matrix(tm, cm)
        scale = abs(m[3]) or abs(m[1]) or 1.0
        eff = float(size or 0) * scale or 1.0
        name = str(font.get("/BaseFont", "")) if font else ""
        bold = bool(_BOLD.search(name))
        for k, piece in enumerate(text.split("\n")):
            if not piece.strip():
                continue
            x, y = m[4], m[5] - k * eff * 1.2
            last = lines[-1] if lines else None
            # Pieces of one line (words, kerned runs) come one after another at the same height.
            if (
                last is not None
                and k == 0
                and abs(last.y - y) <= 0.4 * max(eff, last.size)
                and x >= last.x
                and x - last.end_x <= 2 * eff
            ):
                gap = "" if last.text.endswith(" ") or piece.startswith(" ") else " "
                if x - last.end_x < 0.3 * eff and not last.text.endswith(" "):
                    gap = ""
                last.text += gap + piece
                last.bold = last.bold and bold
                continue
            lines.append(_Line(piece, x, y, eff, bold, page_no))

    page.extract_text(visitor_text=visit)
    for line in lines:
        line.text = " ".join(line.text.split())
    return [ln for ln in lines if ln.text]


def reading_order(lines: list[_Line], width: float) -> list[_Line]:
    """Lines of one page in reading order: a two-column page is read left column first, in
    bands separated by lines that run across both columns."""
    if len(lines) < 4:
        return lines
    right = [ln for ln in lines if ln.x >= 0.4 * width]
    left = [ln for ln in lines if ln.x < 0.4 * width]
    side_by_side = sum(1 for r in right if any(abs(r.y - ln.y) < 0.5 * r.size for ln in left))
    if len(right) < 3 or len(left) < 3 or side_by_side < 2:
        return lines
    split = min(ln.x for ln in right) - 1
    for ln in lines:
        ln.column = 1 if ln.x >= split else 0
    ordered: list[_Line] = []
    band: list[_Line] = []

    def flush() -> None:
        ordered.extend(sorted((ln for ln in band if ln.column == 0), key=lambda ln: -ln.y))
        ordered.extend(sorted((ln for ln in band if ln.column == 1), key=lambda ln: -ln.y))
        band.clear()

    for ln in sorted(lines, key=lambda ln: -ln.y):
        across = (
            ln.column == 0
            and ln.end_x > split + 2 * ln.size
            and not any(abs(o.y - ln.y) < 0.5 * ln.size for o in lines if o.column == 1)
        )
        if across:
            flush()
            ln.column = 2
            ordered.append(ln)
        else:
            band.append(ln)
    flush()
    return ordered


def _ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text))


def _styled_headings(lines: list[_Line]) -> set[int]:
    """Indexes of lines set in a larger or bolder font than the body text, and short."""
    weights: Counter[tuple[float, bool]] = Counter()
    for ln in lines:
        weights[ln.key] += len(ln.text)
    body_size, body_bold = weights.most_common(1)[0][0]
    out = set()
    for i, ln in enumerate(lines):
        styled = ln.size >= body_size * 1.12 or (ln.bold and not body_bold)
        if styled and len(ln.text.split()) <= 20 and not ln.text.endswith((",", ";")):
            out.add(i)
    return out


def _plain_headings(lines: list[_Line], leading: float) -> set[int]:
    """Fallback when every line looks alike: a short line that is not a sentence, standing
    after a paragraph's end (or a gap) and before more text."""
    if not lines:
        return set()
    typical = statistics.median(len(ln.text) for ln in lines)
    out = set()
    for i, ln in enumerate(lines):
        text = ln.text
        if not (
            len(text) <= 0.6 * typical
            and len(text.split()) <= 12
            and (text[0].isupper() or text[0].isdigit())
            and not re.search(r"[.,;:!?]$", text)
            and i + 1 < len(lines)
        ):
            continue
        prev = lines[i - 1] if i else None
        gap = prev is not None and prev.page == ln.page and prev.y - ln.y > 1.35 * leading
        if prev is None or _ends_sentence(prev.text) or gap:
            out.add(i)
    return out


def _leading(lines: list[_Line]) -> float:
    """The usual distance between two lines of a paragraph."""
    gaps = [
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a.page == b.page and a.column == b.column and 0 < a.y - b.y < 3 * a.size
    ]
    if gaps:
        return statistics.median(gaps)
    return 1.2 * statistics.median(ln.size for ln in lines) if lines else 12.0


def _blocks(lines: list[_Line]) -> list[_Block]:
    """Lines grouped into headings and paragraphs."""
    if not lines:
        return []
    leading = _leading(lines)
    heads = _styled_headings(lines)
    styled = bool(heads)
    if not styled:
        heads = _plain_headings(lines, leading)
    blocks: list[_Block] = []
    for i, ln in enumerate(lines):
        prev = lines[i - 1] if i else None
        last = blocks[-1] if blocks else None
        if i in heads:
            same = (
                last is not None
                and last.level
                and prev is not None
                and prev.key == ln.key
                and prev.page == ln.page
                and prev.column == ln.column
                and 0 < prev.y - ln.y <= 1.6 * ln.size
            )
            if same and last is not None:
                last.lines.append(ln)
            else:
                blocks.append(_Block([ln], level=1 if styled else 2))
            continue
        if last is None or last.level or prev is None:
            blocks.append(_Block([ln]))
            continue
        moved = prev.page != ln.page or prev.column != ln.column
        if moved:
            new = _ends_sentence(prev.text) or not ln.text[:1].islower()
        else:
            new = (
                prev.y - ln.y > 1.35 * leading
                or prev.y < ln.y  # went back up: something else starts
                or ln.x > prev.x + 1.5 * ln.size  # an indented first line
            )
        if new:
            blocks.append(_Block([ln]))
        else:
            last.lines.append(ln)
    for b in blocks:  # a bold or large paragraph is text to quote, not a heading
        words = sum(len(ln.text.split()) for ln in b.lines)
        if b.level and (len(b.lines) > 3 or words > 25 or b.lines[-1].text.endswith(".")):
            b.level = 0
    _assign_levels(blocks, styled)
    return blocks


def _assign_levels(blocks: list[_Block], styled: bool) -> None:
    """Larger fonts rank higher; a heading style used once, first, is the title (level 1)."""
    heads = [b for b in blocks if b.level]
    if not heads:
        return
    if not styled:
        for b in heads:
            b.level = 1 if b is blocks[0] else 2
        return
    keys = sorted({b.lines[0].key for b in heads}, key=lambda k: (-k[0], not k[1]))
    rank = {k: i for i, k in enumerate(keys)}
    top = [b for b in heads if rank[b.lines[0].key] == 0]
    title = len(top) == 1 and top[0] is blocks[0]
    for b in heads:
        r = rank[b.lines[0].key]
        b.level = min(6, r + 1 if title else r + 2)


def _join(lines: list[_Line]) -> tuple[str, list[int]]:
    """A paragraph's lines, one per line, with words hyphenated across a line break joined;
    and where each line's text starts in it (inside the joined word, for its second part)."""
    out = lines[0].text
    starts = [0]
    for ln in lines[1:]:
        if re.search(r"[A-Za-z]-$", out) and not out.endswith("--"):
            if ln.text[:1].islower():
                out = out[:-1]  # inter-|national -> international
            # else Sino-|Russian keeps its hyphen
        else:
            out += "\n"
        starts.append(len(out))
        out += ln.text
    return out, starts


def _heading(lines: list[_Line]) -> tuple[str, list[int]]:
    """A heading's lines on one line, and where each starts in it."""
    starts = list(itertools.accumulate((len(ln.text) + 1 for ln in lines[:-1]), initial=0))
    return " ".join(ln.text for ln in lines), starts


def assemble(lines: list[_Line], pages: int = 0) -> tuple[str, list[Heading], list[int]]:
    """The document text (blocks separated by blank lines), its headings' offsets, and the
    offset where each of `pages` pages starts (a page without text starts where the next
    page's text does)."""
    parts: list[str] = []
    headings: list[Heading] = []
    first: dict[int, int] = {}  # page -> offset of its first line
    pos = 0
    for block in _blocks(lines):
        text, starts = _heading(block.lines) if block.level else _join(block.lines)
        if parts:
            pos += 2
        if block.level:
            headings.append(Heading(pos, pos + len(text), block.level, text))
        for ln, start in zip(block.lines, starts, strict=True):
            first.setdefault(ln.page, pos + start)
        parts.append(text)
        pos += len(text)
    page_starts = [0] * max([pages, *(k + 1 for k in first)])
    following = pos
    for page in reversed(range(len(page_starts))):
        following = first.get(page, following)
        page_starts[page] = following
    return "\n\n".join(parts), headings, page_starts


def pdf_text(reader: Any) -> tuple[str, list[Heading], list[int]]:
    """The text and headings of every page of an opened PDF, and where each page starts."""
    lines: list[_Line] = []
    for no, page in enumerate(reader.pages):
        try:
            width = float(page.mediabox.width)
        except (AttributeError, TypeError, ValueError):
            width = 612.0
        lines.extend(reading_order(page_lines(page, no), width))
    return assemble(lines, len(reader.pages))
