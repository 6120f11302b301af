"""The web app's conversations in a real headless Chromium: back after a reload of the page,
back after a restart of the server on the same index (same browser, same address), and a
citation whose source was edited and indexed again in between marked as changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli_command, free_port, stop, wait_until_up
from tests.test_web import ARTIFACTS, CHROMIUM, TRADE, _browser, ask, shot
from ui.sessions import STORAGE_KEY

FOLLOW_UP = "What about Central Asia?"
ARTICLE = Path("documents") / "sino-russian-relations.md"


class Site:
    """A copy of the web corpus and its index, served on one port, stopped and started again."""

    def __init__(self, root: Path, corpus: Path, index: Path) -> None:
        self.root = root
        self.corpus = root / "corpus"
        self.index = root / "index"
        shutil.copytree(corpus, self.corpus)
        # Not the conversations other tests' servers kept in the shared index.
        shutil.copytree(index, self.index, ignore=shutil.ignore_patterns("web-sessions"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = cli_command(self.corpus, self.index, "serve", "--port", str(self.port))
        log = (self.root / "server.log").open("ab")
        env = {**os.environ, "ASSISTANT_EVAL_DIR": str(self.root / "eval-runs")}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_up(self.url, self.proc)
        except RuntimeError:
            self.proc.kill()
            log_text = (self.root / "server.log").read_text(errors="replace")
            raise RuntimeError(log_text[-3000:]) from None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def reindex(self) -> None:
        cmd = cli_command(self.corpus, self.index, "index")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def site(web_corpus: tuple[Path, Path], tmp_path: Path) -> Iterator[Site]:
    served = Site(tmp_path, *web_corpus)
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_playwright = _browser()
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-component-update"],
        )
        yield b
        b.close()


def restored(page, answers: int) -> None:
    """Wait for the page to show the conversation's `answers` answers and their sources,
    and to hold the conversation's key (written once the page has loaded it)."""
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_function(f"() => !!localStorage.getItem('{STORAGE_KEY}')", timeout=60_000)
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .answer').length === n "
        "&& document.querySelectorAll('#sources-panel .turn').length === n",
        arg=answers,
        timeout=60_000,
    )


def conversation(page) -> tuple[list[str], list[str]]:
    """What the page shows: each answer's text, and each turn's question in the panel."""
    answers = page.locator("#chat .answer").all_inner_texts()
    return answers, page.locator("#sources-panel .turn-q").all_inner_texts()


def open_first_citation(page):  # type: ignore[no-untyped-def]
    """Click the first answer's [1] marker; the card it brings into view, flashing."""
    page.locator("#chat .answer").first.locator("a.cite").first.click()
    card = page.locator("#sources-panel .card.flash")
    card.wait_for(timeout=5_000)
    return card


@pytest.mark.browser
def test_the_conversation_survives_a_reload_and_a_restart(browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(site.url)
        restored(page, 0)
        ask(page, TRADE, 1)
        ask(page, FOLLOW_UP, 2)
        before = conversation(page)
        assert "$240 billion" in before[0][0] and len(before[1]) == 2

        page.reload()
        restored(page, 2)
        assert conversation(page) == before
        card = open_first_citation(page)
        assert "surpassing $240 billion in 2023" in card.locator("mark.cited").inner_text()
        shot(page, "reload-restored")
        card.screenshot(path=str(ARTIFACTS / "reload-citation-card.png"))

        site.stop()
        site.start()  # a new server process on the same index and port
        page.goto(site.url)
        restored(page, 2)
        assert conversation(page) == before
        card = open_first_citation(page)
        assert "surpassing $240 billion in 2023" in card.locator("mark.cited").inner_text()
        shot(page, "restart-restored")

        # It goes on from where it was, and that is kept too.
        ask(page, "What was the Treaty of Aigun?", 3)
        page.reload()
        restored(page, 3)
        assert conversation(page)[0][:2] == before[0]

        # The article edited and indexed again while the server is down: text added at its
        # top moves every sentence, so its citations no longer sit where they were.
        site.stop()
        article = site.corpus / ARTICLE
        title, rest = article.read_text(encoding="utf-8").split("\n", 1)
        article.write_text(f"{title}\n\nA line added above the text.\n{rest}", encoding="utf-8")
        site.reindex()
        site.start()
        page.goto(site.url)
        restored(page, 3)
        card = open_first_citation(page)
        assert "This source changed since the answer was given" in card.inner_text()
        assert "surpassing $240 billion in 2023" in card.locator(".stale-quote").inner_text()
        assert card.locator("mark").count() == 0  # nothing highlighted in the new text
        shot(page, "stale-citation")
        card.screenshot(path=str(ARTIFACTS / "stale-citation-card.png"))
        assert errors == []
    finally:
        context.close()
