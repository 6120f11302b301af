"""Loaders: each turns a file (Markdown, plain text, HTML, PDF) into plain text with headings,
or raises CorpusFileError saying why it cannot."""

from __future__ import annotations

import codecs
import logging
import re
import stat
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from assistant.types import ExtractedText, Heading

MAX_FILE_BYTES = 50 * 1024 * 1024


class CorpusFileError(Exception):
    """A corpus file that cannot be read as a document; the message names the reason."""


def _read_text(path: Path) -> tuple[str, tuple[str, ...]]:
    """The file's text and what had to be worked around to read it: UTF-8 is expected; a
    Windows-1252 file is read as such, and a few stray bytes in UTF-8 text become U+FFFD. A
    file that opens with a UTF-16 byte-order mark is UTF-16."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's: a prefix
        raise CorpusFileError("UTF-32 text (save it as UTF-8 to index it)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # as Notepad saves "Unicode"
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise CorpusFileError("not valid UTF-16 text, though it starts as such") from None
        return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), ()
    if b"\x00" in data[:8192]:
        raise CorpusFileError("binary file, not text")
    notes: tuple[str, ...] = ()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        lenient = data.decode("utf-8", errors="replace")
        bad = lenient.count("\ufffd") - data.count("\ufffd".encode())
        if any(ord(c) > 127 and c != "\ufffd" for c in lenient):
            text = lenient.removeprefix("\ufeff")
            notes = (f"not valid UTF-8: {bad} undecodable byte(s) replaced by \ufffd",)
        else:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise CorpusFileError(
                    "neither UTF-8 nor Windows-1252 text (save it as UTF-8 to index it)"
                ) from None
            notes = ("not UTF-8; read as Windows-1252 (save it as UTF-8 to be sure)",)
    return text.replace("\r\n", "\n").replace("\r", "\n"), notes


_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|$)", re.S)
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*?)[ \t]*$")
_YAML_LINE = re.compile(r"^(?:[A-Za-z_][\w-]*[ \t]*:(?:[ \t].*)?|[ \t]+\S.*|[ \t]*- .*|#.*)$")
# The front-matter keys that describe the document, as the manifest names them.
_FRONT_KEYS = {
    "title": "title",
    "author": "author",
    "authors": "author",
    "date": "date",
    "url": "url",
    "publisher": "publisher",
    "source": "url",
}


def _front_matter(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A Markdown file's YAML front matter ("---" lines around "title: ..." lines): its
    plain values of the keys that describe a document, and the text with the block blanked
    (spaces, newlines kept), so it is neither read as body text nor shifts any offset."""
    match = _FRONT_MATTER.match(text)
    lines = match.group(1).split("\n") if match else []
    # Only YAML-like lines: a file that opens with a rule and has a "Section\n---" heading
    # further down is text, not front matter.
    if not match or not all(not ln.strip() or _YAML_LINE.match(ln) for ln in lines):
        return text, ()
    if not any(_FRONT_KEY.match(ln) for ln in lines):
        return text, ()
    about: dict[str, str] = {}
    for line in lines:
        found = _FRONT_KEY.match(line)
        key = _FRONT_KEYS.get(found.group(1).lower()) if found else None
        if found and key and key not in about:
            value = found.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if value and not value.startswith(("[", "{", "|", ">")):  # lists, maps, blocks
                about[key] = value
    blank = re.sub(r"[^\n]", " ", match.group(0))
    return blank + text[match.end() :], tuple(about.items())


def load_markdown(path: Path) -> ExtractedText:
    text, notes = _read_text(path)
    text, about = _front_matter(text)
    headings: list[Heading] = []
    pos = 0
    in_fence = False
    lines = text.split("\n")
    prev: tuple[int, str] | None = None  # (start, line) of the previous non-blank line
    for line in lines:
        start, end = pos, pos + len(line)
        pos = end + 1
        if _FENCE.match(line):
            in_fence = not in_fence
            prev = None
            continue
        if in_fence:
            continue
        match = _ATX.match(line)
        if match:
            headings.append(Heading(start, end, len(match.group(1)), match.group(2).strip()))
            prev = None
            continue
        if prev and _SETEXT.match(line) and len(line.strip()) >= 3 and prev[1].strip():
            level = 1 if line.strip().startswith("=") else 2
            headings.append(Heading(prev[0], end, level, prev[1].strip()))
            prev = None
            continue
        prev = (start, line) if line.strip() else None
    title = dict(about).get("title") or next((h.text for h in headings if h.level == 1), None)
    return ExtractedText(
        text=text,
        title=_strip_md(title) if title else None,
        headings=tuple(headings),
        warnings=notes,
        about=tuple((k, v) for k, v in about if k != "title"),
    )


def _strip_md(text: str) -> str:
    return re.sub(r"[*_`]", "", text).strip()


def _looks_like_heading(line: str) -> bool:
    s = line.strip()
    return (
        0 < len(s) <= 100
        and len(s.split()) <= 14
        and s[0].isupper()
        and s[-1] not in ".!?:;,"
        and not s.startswith(("- ", "* "))
    )


def load_text(path: Path) -> ExtractedText:
    text, notes = _read_text(path)
    return ExtractedText(
        text=text, title=None, headings=tuple(_plain_headings(text)), warnings=notes
    )


def _plain_headings(text: str) -> list[Heading]:
    """Headings in plain text: short unpunctuated lines standing between paragraphs."""
    lines = text.split("\n")
    starts = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    headings: list[Heading] = []
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    for i, line in enumerate(lines):
        if not _looks_like_heading(line):
            continue
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), None)
        after = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if after is None or len(after.strip()) < 60:
            continue
        if before is not None and before.rstrip()[-1:] not in '.!?"”’)':
            continue
        s = starts[i] + (len(line) - len(line.lstrip()))
        level = 1 if i == first else 2
        headings.append(Heading(s, starts[i] + len(line.rstrip()), level, line.strip()))
    return headings


class _HTMLText(HTMLParser):
    """Collects the visible text of an HTML page as blocks, remembering which are headings."""

    BLOCK: ClassVar[frozenset[str]] = frozenset({
        "p", "div", "section", "article", "main", "li", "ul", "ol", "br", "tr", "table",
        "blockquote", "pre", "header", "footer", "aside", "dd", "dt", "dl", "figcaption",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "form", "nav",
    })  # fmt: skip
    SKIP: ClassVar[frozenset[str]] = frozenset(
        {"script", "style", "noscript", "template", "svg", "iframe", "object", "head", "canvas"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, int]] = []  # (text, heading level or 0)
        self._buf: list[str] = []
        self._skip = 0
        self._heading = 0
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self._flush()
            if re.fullmatch(r"h[1-6]", tag):
                self._heading = int(tag[1])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self._flush()
            if re.fullmatch(r"h[1-6]", tag):
                self._heading = 0

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is None and data.strip():
            self.title = " ".join(data.split())
        if not self._skip:
            self._buf.append(data)

    def _flush(self) -> None:
        block = " ".join("".join(self._buf).split())
        self._buf = []
        if block:
            self.blocks.append((block, self._heading))

    def close(self) -> None:
        super().close()
        self._flush()


def load_html(path: Path) -> ExtractedText:
    parser = _HTMLText()
    source, notes = _read_text(path)
    parser.feed(source)
    parser.close()
    parts: list[str] = []
    headings: list[Heading] = []
    pos = 0
    for block, level in parser.blocks:
        if parts:
            pos += 2
        if level:
            headings.append(Heading(pos, pos + len(block), level, block))
        parts.append(block)
        pos += len(block)
    title = parser.title or next((h.text for h in headings if h.level == 1), None)
    return ExtractedText(
        text="\n\n".join(parts), title=title, headings=tuple(headings), warnings=notes
    )


def load_pdf(path: Path) -> ExtractedText:
    # A damaged PDF is reported once, as the reason it was skipped, not as parser chatter.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    from assistant.corpus.pdftext import pdf_text

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except (DependencyError, NotImplementedError):
                opened = False
            if not opened:
                raise CorpusFileError(
                    "encrypted PDF that needs a password (save an unencrypted copy to index it)"
                )
        text, headings, pages = pdf_text(reader)
        meta_title = reader.metadata.title if reader.metadata else None
    except CorpusFileError:
        raise
    except FileNotDecryptedError:
        raise CorpusFileError(
            "encrypted PDF that needs a password (save an unencrypted copy to index it)"
        ) from None
    except OSError:
        raise
    except Exception as exc:  # a malformed PDF can fail in many ways inside the parser
        raise CorpusFileError(f"unreadable PDF ({exc.__class__.__name__})") from None
    if not text.strip():
        raise CorpusFileError("no text layer (a scanned image?): nothing to index")
    title = str(meta_title).strip() if meta_title else ""
    if not title:
        title = next((h.text for h in headings if h.level == 1), "")
    return ExtractedText(
        text=text, title=title or None, headings=tuple(headings), pages=tuple(pages)
    )


LOADERS: dict[str, Callable[[Path], ExtractedText]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}


def _size_label(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def extract(path: Path) -> ExtractedText:
    """Load one file with the loader for its extension; CorpusFileError says why it cannot."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        supported = " ".join(sorted(LOADERS))
        raise CorpusFileError(f"unsupported file type '{path.suffix}' (supported: {supported})")
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # a pipe or a device would block or never end
            raise CorpusFileError("not a regular file")
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise CorpusFileError(f"larger than the {_size_label(MAX_FILE_BYTES)} limit")
        extracted = loader(path)
    except PermissionError:
        raise CorpusFileError("permission denied") from None
    except IsADirectoryError:
        raise CorpusFileError("is a folder") from None
    except OSError as exc:
        raise CorpusFileError(f"unreadable ({exc.strerror or exc})") from None
    if not extracted.text.strip():
        raise CorpusFileError("empty: no text to index")
    return extracted
