"""What the CLI and the web app show for a citation: its "current to" date, a note from
corpus/NOTES.md, and nothing from a document or the manifest that could become markup or a
link (browser-free: the HTML is checked as text)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.cli.terminal import answer_text
from assistant.config import Settings
from assistant.corpus import MANIFEST_NAME
from assistant.embedding import Embedder
from assistant.service import Assistant
from assistant.types import Citation, CitationNote, DocumentMeta, StoredDocument
from ui import markup

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3))"


@pytest.fixture
def dated(small_corpus: Path, tmp_path: Path, embedder: Embedder) -> Assistant:
    (small_corpus / MANIFEST_NAME).write_text(
        '[[documents]]\nid = "baikal"\nfile = "baikal.md"\ntitle = "Lake Baikal"\n'
        'current_to = "2025-11"\nurl = "javascript:alert(1)"\n',
        encoding="utf-8",
    )
    assistant = Assistant(Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index"), embedder)
    with pytest.warns(UserWarning, match="not an http"):
        assistant.index()
    return assistant


def test_current_to_travels_from_manifest_to_citation_and_sources(dated: Assistant) -> None:
    settings = dated.settings
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    runner = CliRunner()
    question = "How deep is Lake Baikal?"
    data = json.loads(runner.invoke(cli, [*base, "ask", question, "--json"]).stdout)
    assert data["citations"][0]["doc_id"] == "baikal"
    assert data["citations"][0]["current_to"] == "2025-11"
    assert data["citations"][0]["url"] == ""  # the javascript: URL was left out at load
    text = runner.invoke(cli, [*base, "ask", question]).stdout
    assert "[1] Lake Baikal (source) · current to 2025-11" in text
    sources = json.loads(runner.invoke(cli, [*base, "sources", "--json"]).stdout)
    by_id = {s["id"]: s for s in sources}
    assert by_id["baikal"]["current_to"] == "2025-11" and by_id["tea"]["current_to"] == ""
    listing = runner.invoke(cli, [*base, "sources"]).stdout
    assert "current to 2025-11" in listing
    answer = dated.ask(question)
    card = markup.citation_card(
        answer.citations[0], 0, answer.citations[0].quote, answer.citations[0].start
    )
    assert '<span class="current-to">current to 2025-11</span>' in card


def test_an_undated_citation_says_nothing_about_currency(dated: Assistant) -> None:
    answer = dated.ask("What did the Kyakhta trade carry?")
    c = answer.citations[0]
    assert c.doc_id == "tea" and c.current_to is None
    assert "current to" not in answer_text(answer)
    assert "current-to" not in markup.citation_card(c, 0, c.quote, c.start)


def citation(**changes: object) -> Citation:
    c = Citation(
        n=1,
        passage_id="doc:0a1b2c3d4e",
        doc_id="doc",
        title="A title",
        url="",
        kind="article",
        section="",
        start=10,
        end=30,
        quote="Cited sentence here.",
        passage_start=0,
        passage_end=40,
    )
    for k, v in changes.items():
        setattr(c, k, v)
    return c


def note(**changes: str) -> CitationNote:
    base = dict(
        heading="BeiDou, not Baidu",
        verdict="contradicts",
        public_record="The system is BeiDou.",
        brief_id="beidou-navigation-system",
        brief_title="BeiDou: China's Satellite Navigation System",
    )
    return CitationNote(**{**base, **changes})


def test_the_card_says_a_source_disagrees_and_points_to_the_brief() -> None:
    card = markup.citation_card(citation(note=note()), 0, "x" * 40, 0)
    text = html.unescape(re.sub(r"<[^>]+>", "", card))
    assert "Note: a source contradicts this: BeiDou, not Baidu. The system is BeiDou." in text
    assert "See BeiDou: China's Satellite Navigation System (beidou-navigation-system)" in text
    assert 'class="brief-link" href="#doc-beidou-navigation-system"' in card
    assert 'data-doc="beidou-navigation-system"' in card
    doc = StoredDocument(
        DocumentMeta(id="beidou-navigation-system", title="BeiDou", file="b.md"), "Text.", "h"
    )
    assert '<h3 id="doc-beidou-navigation-system">' in markup.document_html(doc, [])


def test_a_note_without_verdict_reads_qualifies() -> None:
    c = citation(note=note(verdict=""))
    assert "a source qualifies this" in markup.citation_card(c, 0, "x" * 40, 0)
    assert answer_text_line(c) == (
        "Note: a source qualifies this: BeiDou, not Baidu (see beidou-navigation-system)"
    )


def answer_text_line(c: Citation) -> str:
    from assistant.cli.terminal import note_line

    return note_line(c) or ""


def assert_inert(page: str) -> None:
    """No tag or attribute of the page's own making can come from the text."""
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "onerror=" not in page
    assert not re.search(r'href\s*=\s*"\s*(javascript|data|vbscript):', page, re.IGNORECASE)
    assert "](javascript" not in page  # nor a Markdown link


def test_note_and_metadata_text_is_escaped() -> None:
    hostile = note(
        heading=HOSTILE, public_record=HOSTILE, brief_title=HOSTILE, brief_id='x" onclick="y'
    )
    c = citation(title=HOSTILE, section=HOSTILE, current_to=HOSTILE, quote=HOSTILE, note=hostile)
    card = markup.citation_card(c, 0, HOSTILE * 2, 0)
    assert_inert(card)
    assert 'onclick="y' not in card
    assert "&#60;script&#62;" in card  # shown as text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "  JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "//evil.example/x",
        'https://ok.example/"><script>alert(1)</script>',
    ],
)
def test_unsafe_urls_never_become_links(url: str) -> None:
    shown = markup.link(url, "open source")
    assert_inert(shown)
    if markup.safe_url(url) is None:
        assert shown == "open source"
    card = markup.citation_card(citation(url=url), 0, "x" * 40, 0)
    assert_inert(card)
    meta = DocumentMeta(id="d", title="D", file="d.md", url=url)
    assert_inert(markup.document_html(StoredDocument(meta, "Some text.", "h"), []))


def test_safe_urls_are_links_that_open_apart() -> None:
    shown = markup.link("https://example.org/a?b=1&c=2", "open source")
    assert shown.startswith('<a href="https://example.org/a?b=1&amp;c=2"')
    assert 'rel="noopener noreferrer nofollow"' in shown
