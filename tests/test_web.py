"""The web app, end to end: a real server on 127.0.0.1, driven through its API with
gradio_client and in a real headless Chromium with Playwright."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli_command, free_port, stop, wait_until_up

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
TRADE = "How large was bilateral trade between Russia and China in 2023?"


def start_server(
    corpus: Path, index: Path, log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = cli_command(corpus, index, "serve", "--port", str(port))
    handle = log.open("wb")
    # Evaluation runs started from the page go to a folder of the test's own.
    environment = {**os.environ, "ASSISTANT_EVAL_DIR": str(log.parent / "eval-runs"), **(env or {})}
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
    return proc, url


@pytest.fixture(scope="session")
def server(
    web_corpus: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    corpus, index = web_corpus
    proc, url = start_server(corpus, index, tmp_path_factory.mktemp("logs") / "server.log")
    yield url
    stop(proc)


# --- API, through gradio_client ----------------------------------------------------------------


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def text_of(history: list[dict]) -> str:
    parts = []
    for message in history:
        content = message["content"]
        if isinstance(content, list):
            parts += [c.get("text", "") for c in content if isinstance(c, dict)]
        else:
            parts.append(str(content))
    return "\n".join(parts)


def test_answer_endpoint_returns_the_cited_answer(server: str) -> None:
    data = client(server).predict(TRADE, api_name="/answer")
    assert data["abstained"] is False
    assert "$240 billion" in data["citations"][0]["quote"]


def test_chat_endpoint_answers_and_resolves_a_followup(server: str) -> None:
    c = client(server)
    history, panel, box = c.predict(TRADE, [], api_name="/ask")
    assert box == ""
    assert "$240 billion" in text_of(history) and 'class="cite"' in text_of(history)
    assert "<mark" in panel and "$240 billion" in panel
    history, panel, _ = c.predict("What about Central Asia?", history, api_name="/ask")
    assert len(history) == 4
    assert "Central Asia" in text_of(history[-1:])
    assert panel.index("2. What about Central Asia?") < panel.index("1. How large")


def test_sessions_do_not_leak_into_each_other(server: str) -> None:
    a, b = client(server), client(server)
    canary = "zanzibar-canary-4471"
    a.predict(f"Is {canary} related to the Treaty of Aigun?", [], api_name="/ask")
    history_b, panel_b, _ = b.predict("What was the Treaty of Aigun?", [], api_name="/ask")
    assert canary not in text_of(history_b) and canary not in panel_b
    assert "1. What was the Treaty of Aigun?" in panel_b and "2." not in panel_b.split("</div>")[0]
    _, panel_a, _ = a.predict("When was it signed?", [], api_name="/ask")
    assert canary in panel_a  # a's own history is kept


def test_bad_messages_get_a_message_not_an_error(server: str) -> None:
    c = client(server)
    history, _, _ = c.predict("x" * 2500, [], api_name="/ask")
    assert "limit is 2,000" in text_of(history)
    history, _, _ = c.predict("   ", [], api_name="/ask")
    assert history == []


def test_lookup_endpoints(server: str) -> None:
    c = client(server)
    html = c.predict(
        "Trade between Russia and China passed $240 billion in 2023", 3, api_name="/cite"
    )
    assert "supports" in html and "<mark" in html
    passage_id = c.predict(TRADE, api_name="/answer")["citations"][0]["passage_id"]
    context = c.predict(passage_id, api_name="/passage")
    assert "<mark" in context and "Moreover, Russia’s growing isolation" in context
    assert "No passage with id" in c.predict("nope:123", api_name="/passage")
    document = c.predict("sino-russian-relations", api_name="/document")
    assert document.count('class="doc-passage"') > 20


def test_export_writes_markdown_with_references(server: str) -> None:
    c = client(server)
    c.predict(TRADE, [], api_name="/ask")
    path = c.predict(api_name="/export")
    text = Path(path).read_text(encoding="utf-8")
    assert (
        text.startswith("# Conversation")
        and "[1] Sino-Russian Relations" in text
        and "> From 2022" in text
    )


def test_login_is_required_when_auth_is_set(web_corpus: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = web_corpus
    proc, url = start_server(
        corpus, index, tmp_path / "auth.log", env={"ASSISTANT_AUTH": "alice:s3cret"}
    )
    try:
        from gradio_client import Client

        with pytest.raises(Exception):  # noqa: B017 - any refusal will do; it must not answer
            Client(url, verbose=False).predict(TRADE, api_name="/answer")
        ok = Client(url, auth=("alice", "s3cret"), verbose=False).predict(TRADE, api_name="/answer")
        assert "$240 billion" in ok["citations"][0]["quote"]
    finally:
        stop(proc)


# --- In a real browser ---------------------------------------------------------------------------


def _browser():
    required = os.environ.get("ASSISTANT_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (make test installs it)")
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_playwright = _browser()
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, server: str):
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.outside = []  # requests the page makes anywhere but the app itself
    page.on("request", lambda r: None if r.url.startswith(server) else page.outside.append(r.url))
    page.goto(server)
    page.wait_for_selector("#question textarea", timeout=60_000)
    yield page
    context.close()


def ask(page, question: str, answers: int) -> None:
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .answer, #chat .abstain, #chat .error').length >= n "
        "&& !document.querySelector('#chat .thinking')",
        arg=answers,
        timeout=60_000,
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.browser
def test_ask_click_citation_and_follow_up(page) -> None:
    ask(page, TRADE, 1)
    answer = page.locator("#chat .answer").first
    assert "$240 billion" in answer.inner_text()
    marker = page.locator("#chat a.cite").first
    marker.click()
    card = page.locator("#sources-panel .card.flash")
    card.wait_for(timeout=5_000)
    highlighted = card.locator("mark.cited").inner_text()
    assert "surpassing $240 billion in 2023" in highlighted
    assert card.is_visible()
    shot(page, "chat-citation")
    ask(page, "What about Central Asia?", 2)
    assert "Central Asia" in page.locator("#chat .answer").nth(1).inner_text()
    assert page.locator("#sources-panel .turn").count() == 2
    shot(page, "chat-followup")
    page.click("#new")
    page.wait_for_function("() => document.querySelectorAll('#chat .answer').length === 0")
    assert page.dialogs == []


@pytest.mark.browser
def test_sources_and_lookup_tabs(page) -> None:
    page.get_by_role("tab", name="Sources").click()
    page.wait_for_selector("#documents")
    page.locator("#pick-document input").click()
    page.get_by_role(
        "option", name="The Treaty of Aigun (1858) and the Convention of Peking (1860)"
    ).click()
    page.wait_for_selector("#document-view .doc-passage")
    assert page.locator("#document-view .doc-passage").count() >= 4
    shot(page, "sources-tab")
    page.get_by_role("tab", name="Citation lookup").click()
    page.fill("#claim textarea", "China supplies microchips and cars to Russia")
    page.click("#find")
    page.wait_for_selector("#support-view .card mark.cited", timeout=30_000)
    shot(page, "lookup-tab")


@pytest.mark.browser
@pytest.mark.slow
def test_evals_tab_runs_the_evaluation_and_shows_the_report(page) -> None:
    page.get_by_role("tab", name="Evals").click()
    page.wait_for_selector("#eval-status")
    assert "No evaluation has run yet" in page.locator("#eval-status").inner_text()
    page.click("#run-eval")
    page.wait_for_function(
        "() => document.querySelector('#eval-status').innerText.includes('hit@1')", timeout=240_000
    )
    assert (
        "| hit@1 |" in page.locator("#eval-report").inner_text()
        or "hit@1" in page.locator("#eval-report").inner_text()
    )
    page.wait_for_selector("img[src*='metrics']", timeout=30_000)
    shot(page, "evals-tab")


@pytest.mark.browser
def test_document_payloads_stay_inert(page) -> None:
    ask(page, "What is the Zebra Protocol?", 1)
    assert "Quillmore" in page.locator("#chat").inner_text()
    page.locator("#chat a.cite").first.click()
    page.wait_for_selector("#sources-panel .card.flash")
    shot(page, "hostile-chat")
    page.get_by_role("tab", name="Sources").click()
    page.locator("#pick-document input").click()
    page.get_by_role("option", name="The Zebra Protocol", exact=False).first.click()
    page.wait_for_selector("#document-view .doc-passage")
    shot(page, "hostile-document")
    page.wait_for_timeout(1000)
    assert page.dialogs == []
    assert page.outside == []  # no beacon image, no link followed
    assert page.evaluate("() => window.__pwned") is None
    injected = page.evaluate(
        """() => {
            const roots = [...document.querySelectorAll('#chat .answer, #chat .refs, #chat .abstain, #sources-panel, #document-view')];
            const bad = [];
            for (const root of roots) {
              for (const el of root.querySelectorAll('*')) {
                for (const a of el.attributes) {
                  if (a.name.startsWith('on')) bad.push(el.tagName + ' ' + a.name);
                  if (['href', 'src'].includes(a.name) && /^\\s*javascript:/i.test(a.value)) bad.push(el.tagName + ' ' + a.name);
                }
                if (['SCRIPT', 'IFRAME', 'SVG', 'IMG'].includes(el.tagName.toUpperCase())) bad.push(el.tagName);
              }
            }
            return bad;
        }"""
    )
    assert injected == []
    assert "<script>" in page.locator("#document-view").inner_text()  # shown as text
