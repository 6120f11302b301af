"""A PDF's pages: the loader records where each page's text starts (exactly, also when a word
hyphenated across a page break is joined), the index keeps those offsets, and a citation of a
PDF names the page its sentence starts on, in JSON and on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.config import Settings
from assistant.corpus.loaders import extract
from assistant.embedding import Embedder
from assistant.service import Assistant
from assistant.types import Citation, DocumentMeta, StoredDocument
from tests.helpers import build_pdf, column_runs

PAGE_1 = [
    ("h1", "Amur Basin Report"),
    ("h2", "Border rivers"),
    ("p", "The Amur River forms part of the border between Russia"),
    ("p", "and China for about 1,600 kilometres of its length."),
    ("p", "Ice closes the river to shipping from November until"),
    ("p", "April, and the spring floods reach their peak in inter-"),
]
PAGE_2 = [
    ("p", "national waters near Khabarovsk in late May."),
    ("", ""),
    ("p", "The Blagoveshchensk road bridge opened to traffic in"),
    ("p", "June 2022 after years of delay on the Russian side."),
]
PAGE_3 = [
    ("h2", "Railways"),
    ("p", "The Tongjiang rail bridge carried its first freight"),
    ("p", "train across the Amur in November 2022."),
]
BRIDGE = "When did the Blagoveshchensk road bridge open to traffic?"


def report_pdf(path: Path) -> Path:
    """A three-page report whose first page ends inside a hyphenated word."""
    return build_pdf(
        path,
        [column_runs(page, 72, 720) for page in (PAGE_1, PAGE_2, PAGE_3)],
        title="Amur Basin Report",
    )


def test_each_page_starts_where_its_first_line_does(tmp_path: Path) -> None:
    extracted = extract(report_pdf(tmp_path / "amur.pdf"))
    text, pages = extracted.text, extracted.pages
    assert len(pages) == 3 and pages[0] == 0
    # The word broken over the page break is joined; page 2 starts at its second part.
    assert "peak in international waters near Khabarovsk" in text
    assert text[: pages[1]].endswith("peak in inter")
    assert text[pages[1] :].startswith("national waters near Khabarovsk")
    assert text[pages[2] :].startswith("Railways\n\nThe Tongjiang rail bridge")
    bounds = [*pages, len(text)]
    for n, lines in enumerate((PAGE_1, PAGE_2, PAGE_3)):
        own = text[bounds[n] : bounds[n + 1]]
        for _, line in lines:
            assert line.removesuffix("-") in own, (n + 1, line)


@pytest.mark.parametrize(
    ("end_of_page", "top_of_page", "joined", "page_two"),
    [
        ("gas bound for inter-", "national buyers.", "for international buyers.", "national"),
        # a capital after the break starts a new paragraph, as it does on any page break
        ("the long Sino-", "Russian border.", "the long Sino-\n\nRussian border.", "Russian"),
        ("the border in 1991.", "Trade grew after.", "in 1991.\n\nTrade grew after.", "Trade"),
        ("the border runs on", "along the river.", "runs on\nalong the river.", "along"),
    ],
)
def test_a_page_break_inside_a_paragraph_keeps_the_offsets_exact(
    tmp_path: Path, end_of_page: str, top_of_page: str, joined: str, page_two: str
) -> None:
    first = [("p", "Russia and China share a long frontier, and for most of"), ("p", end_of_page)]
    second = [("p", top_of_page), ("p", "and that is where the report ends today.")]
    pdf = build_pdf(
        tmp_path / "two.pdf", [column_runs(first, 72, 720), column_runs(second, 72, 720)]
    )
    extracted = extract(pdf)
    text, pages = extracted.text, extracted.pages
    assert joined in text
    assert pages == (0, text.index(joined) + joined.index(page_two))
    assert text[pages[1] :].startswith(top_of_page)


def test_a_page_without_text_starts_where_the_next_one_does(tmp_path: Path) -> None:
    one = column_runs([("p", "The first page says one thing about the river.")], 72, 720)
    three = column_runs([("p", "The third page says another thing entirely.")], 72, 720)
    extracted = extract(build_pdf(tmp_path / "gap.pdf", [one, [], three]))
    third = extracted.text.index("The third page")
    assert extracted.pages == (0, third, third)
    doc = StoredDocument(
        DocumentMeta("gap", "Gap", "gap.pdf"), extracted.text, "h", pages=extracted.pages
    )
    assert [doc.page(0), doc.page(third - 1), doc.page(third), doc.page(len(extracted.text))] == [
        1,
        1,
        3,
        3,
    ]


def test_other_formats_have_no_pages(tmp_path: Path) -> None:
    for name, body in (
        ("a.md", "# Title\n\nThe Amur is a river.\n"),
        ("b.txt", "The Amur is a river.\n"),
        ("c.html", "<h1>Title</h1><p>The Amur is a river.</p>"),
    ):
        (tmp_path / name).write_text(body, encoding="utf-8")
        assert extract(tmp_path / name).pages == ()
    assert StoredDocument(DocumentMeta("a", "A", "a.md"), "text", "h").page(3) is None


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    """A corpus of the report PDF and a Markdown note, indexed in a real store."""
    root = tmp_path_factory.mktemp("pdf-pages")
    corpus = root / "corpus"
    corpus.mkdir()
    report_pdf(corpus / "amur-basin.pdf")
    (corpus / "ussuri.md").write_text(
        "# The Ussuri\n\nThe Ussuri River joins the Amur at Khabarovsk after flowing north "
        "for 897 kilometres along the border.\n",
        encoding="utf-8",
    )
    Assistant(Settings(corpus_dir=corpus, index_dir=root / "index"), embedder).index()
    return corpus, root / "index"


@pytest.fixture
def amur(indexed: tuple[Path, Path], embedder: Embedder) -> Assistant:
    corpus, index = indexed
    return Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder)


def test_the_index_keeps_the_page_starts(amur: Assistant, indexed: tuple[Path, Path]) -> None:
    corpus, _ = indexed
    stored = amur.document("amur-basin")
    assert stored.pages == extract(corpus / "amur-basin.pdf").pages
    assert len(stored.pages) == 3
    assert amur.document("ussuri").pages == ()


def test_a_citation_of_a_pdf_names_its_page(amur: Assistant) -> None:
    answer = amur.ask(BRIDGE)
    assert not answer.abstained
    c = answer.citations[0]
    assert c.doc_id == "amur-basin" and "Blagoveshchensk road bridge opened" in c.quote
    assert c.page == 2
    assert c.to_dict()["page"] == 2
    assert Citation.from_dict(json.loads(json.dumps(c.to_dict()))).page == 2
    rail = amur.ask("When did the first freight train cross the Tongjiang rail bridge?")
    assert rail.citations[0].page == 3


def test_a_citation_of_another_format_has_no_page(amur: Assistant) -> None:
    c = amur.ask("How long is the Ussuri River?").citations[0]
    assert c.doc_id == "ussuri"
    assert c.page is None and "page" not in c.to_dict()


def test_the_command_line_shows_the_page(indexed: tuple[Path, Path]) -> None:
    corpus, index = indexed
    base = ["--corpus", str(corpus), "--index", str(index)]
    result = CliRunner().invoke(cli, [*base, "ask", BRIDGE])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("passage "))
    assert ", p. 2, characters " in line
    passage_id = line.split()[1].rstrip(",")
    shown = CliRunner().invoke(cli, [*base, "show", passage_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["page"] == 2
    assert "Page 2 of the PDF" in CliRunner().invoke(cli, [*base, "show", passage_id]).output
    ussuri = CliRunner().invoke(cli, [*base, "ask", "How long is the Ussuri River?"])
    assert " p. " not in ussuri.output
