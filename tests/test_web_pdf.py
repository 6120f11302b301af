"""A citation of a PDF in the web app: the card shows the page and links to the file itself,
served by document id at that page; nothing but the index's PDFs is served, and a login set
with ASSISTANT_AUTH guards the files too."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.service import Assistant
from tests.helpers import make_pdf, stop
from tests.test_pdf_pages import BRIDGE, report_pdf
from tests.test_web import ARTIFACTS, CHROMIUM, _browser, http, loaded, start_server


@pytest.fixture(scope="module")
def pdf_corpus(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    """The three-page report, a Markdown note, and a PDF beside the corpus (not in it)."""
    root = tmp_path_factory.mktemp("web-pdf")
    corpus = root / "corpus"
    corpus.mkdir()
    report_pdf(corpus / "amur-basin.pdf")
    (corpus / "ussuri.md").write_text(
        "# The Ussuri\n\nThe Ussuri River joins the Amur at Khabarovsk.\n", encoding="utf-8"
    )
    make_pdf(root / "private.pdf", ["Not a document of the index."])
    Assistant(Settings(corpus_dir=corpus, index_dir=root / "index"), embedder).index()
    return corpus, root / "index"


@pytest.fixture(scope="module")
def pdf_server(pdf_corpus: tuple[Path, Path]) -> Iterator[str]:
    corpus, index = pdf_corpus
    proc, url = start_server(corpus, index, corpus.parent / "server.log")
    yield url
    stop(proc)


def fetch(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET."""
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_only_the_index_pdfs_are_served(pdf_server: str, pdf_corpus: tuple[Path, Path]) -> None:
    corpus, _ = pdf_corpus
    status, kind, body = fetch(pdf_server + "pdf/amur-basin")
    assert status == 200 and kind == "application/pdf"
    assert body == (corpus / "amur-basin.pdf").read_bytes()
    for path in (
        "pdf/ussuri",  # a document, but not a PDF
        "pdf/no-such-document",
        "pdf/amur-basin.pdf",  # a file name is not an id
        "pdf/..%2Fprivate.pdf",
        "pdf/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "pdf/..%2F..%2Fcorpus%2Famur-basin.pdf",
        "pdf/%2Fetc%2Fpasswd",
        "pdf/",
    ):
        status, _, body = fetch(pdf_server + path)
        assert status == 404, path
        assert b"%PDF" not in body and b"root:" not in body, path
    assert http(pdf_server + "pdf/amur-basin", method="POST", data=b"")[0] == 405


@pytest.mark.browser
def test_a_pdf_citation_shows_its_page_and_opens_the_file_there(
    pdf_server: str, pdf_corpus: tuple[Path, Path]
) -> None:
    corpus, _ = pdf_corpus
    sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 950})
            page = context.new_page()
            page.goto(pdf_server)
            loaded(page)
            page.fill("#question textarea", BRIDGE)
            page.keyboard.press("Enter")
            page.wait_for_selector("#chat .answer", timeout=60_000)
            page.locator("#chat a.cite").first.click()
            card = page.locator("#sources-panel .card.flash")
            card.wait_for(timeout=5_000)
            assert "Blagoveshchensk road bridge opened" in card.locator("mark.cited").inner_text()
            link = card.locator("a.pdf-page")
            assert link.inner_text() == "p. 2"
            assert link.get_attribute("href") == "pdf/amur-basin#page=2"
            href = link.evaluate("a => a.href")
            assert href == pdf_server + "pdf/amur-basin#page=2"
            assert link.get_attribute("target") == "_blank"
            served = context.request.get(href)
            assert served.status == 200
            assert served.headers["content-type"] == "application/pdf"
            assert served.body() == (corpus / "amur-basin.pdf").read_bytes()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "pdf-citation.png"), full_page=True)
            context.close()
        finally:
            browser.close()


def test_the_pdf_route_needs_the_login(pdf_corpus: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = pdf_corpus
    proc, url = start_server(
        corpus, index, tmp_path / "auth.log", env={"ASSISTANT_AUTH": "alice:s3cret"}
    )
    try:
        status, _, body = fetch(url + "pdf/amur-basin")
        assert status == 401 and b"%PDF" not in body
        jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.parse.urlencode({"username": "alice", "password": "s3cret"}).encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert http(url + "login", "POST", login, form, jar)[0] == 200
        status, kind, body = fetch(url + "pdf/amur-basin", jar)
        assert (status, kind) == (200, "application/pdf")
        assert body == (corpus / "amur-basin.pdf").read_bytes()
        assert fetch(url + "pdf/ussuri", jar)[0] == 404
    finally:
        stop(proc)
