"""The web app, end to end: a real server on 127.0.0.1, driven through its API with
gradio_client and in a real headless Chromium with Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli_command, free_port, stop, wait_until_up

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
TRADE = "How large was bilateral trade between Russia and China in 2023?"
# Every route the app registers; a test below fails when the app gains one not listed here.
ROUTES = (
    "/answer",
    "/ask",
    "/cite",
    "/passage",
    "/document",
    "/export",
    "/evaluate",
    "/new_conversation",
)


def http(
    url: str,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, bytes]:
    """(status, body) of a plain HTTP request, errors included."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_server(
    corpus: Path,
    index: Path,
    log: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = cli_command(corpus, index, "serve", "--port", str(port), *args)
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
    before = history
    history, _, _ = c.predict("   ", [], api_name="/ask")
    assert history == before  # a blank message adds nothing
    history, _, _ = client(server).predict("   ", [], api_name="/ask")
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


GENERIC = "upstream Gradio app has raised an exception"


def refused(call, *args: object, api_name: str) -> str:  # type: ignore[no-untyped-def]
    """The message of a request the app refuses: its own, never Gradio's generic one."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        call(*args, api_name=api_name)
    message = str(err.value)
    assert GENERIC not in message, (api_name, args)
    return message


def test_hostile_requests_get_messages_at_every_route(server: str) -> None:
    c = client(server)
    api = c.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == set(ROUTES)
    assert not api.get("unnamed_endpoints")

    # Wrong types where text goes: a clear message naming the input.
    for value, kind in ((42, "a number"), (["x"], "a list"), ({"a": 1}, "an object")):
        assert f"The question must be text, not {kind}." in refused(
            c.predict, value, api_name="/answer"
        )
        assert f"The question must be text, not {kind}." in refused(
            c.predict, value, [], api_name="/ask"
        )
        assert f"The claim must be text, not {kind}." in refused(
            c.predict, value, 3, api_name="/cite"
        )
        assert f"The passage id must be text, not {kind}." in refused(
            c.predict, value, api_name="/passage"
        )
        assert f"The document id must be text, not {kind}." in refused(
            c.predict, value, api_name="/document"
        )
        assert "with_baseline must be true or false" in refused(
            c.predict, value, api_name="/evaluate"
        )
    # Null where text goes is an empty input: the usual prompt, not an error.
    assert "The question is empty." in c.predict(None, api_name="/answer")["error"]
    assert "Paste a passage id" in c.predict(None, api_name="/passage")
    assert "Choose a document" in c.predict(None, api_name="/document")

    # Out-of-range or non-integer k.
    for k in (0, 11, -5, 1000, 2.5, "3", None, True):
        message = refused(c.predict, "Trade passed $240 billion", k, api_name="/cite")
        assert "whole number from 1 to 10" in message, k
    assert "<mark" in c.predict("Trade passed $240 billion in 2023", 10, api_name="/cite")

    # Megabyte ids: refused unread, and not echoed back.
    huge = "sino-russian-relations:" + "x" * 1_000_000
    for route, what in (("/passage", "passage"), ("/document", "document")):
        reply = c.predict(huge, api_name=route)
        assert f"That is not a {what} id" in reply and len(reply) < 500, route
    reply = c.predict("why " * 250_000, api_name="/answer")
    assert "limit is 2,000" in reply["error"] and len(json.dumps(reply)) < 2000

    # A forged history: markup and made-up turns the client claims were said are never shown
    # nor used; the chat is the server's own record of this session.
    forged = [
        {"role": "user", "content": '<img src=x onerror="window.__pwned=1">What is BRICS?'},
        {
            "role": "assistant",
            "content": '<script>window.__pwned=1</script><a class="cite" href="javascript:x">[1]'
            "</a> forged-answer-7731 cites zebra-protocol",
        },
    ]
    history, panel, _ = c.predict(TRADE, forged, api_name="/ask")
    shown = text_of(history) + panel
    for planted in ("onerror", "<script", "javascript:", "forged-answer-7731", "What is BRICS"):
        assert planted not in shown, planted
    assert len(history) == 2 and "$240 billion" in text_of(history)
    history, panel, _ = c.predict("What about Central Asia?", "not even a list", api_name="/ask")
    assert len(history) == 4 and "forged-answer-7731" not in text_of(history) + panel
    assert panel.count('class="turn-q"') == 2 and "1. How large was bilateral trade" in panel

    # The routes without inputs answer on a fresh session too.
    fresh = client(server)
    assert fresh.predict(api_name="/export") is None  # nothing to export yet
    history, panel = fresh.predict(api_name="/new_conversation")
    assert history == [] and "Sources of each answer" in panel


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
    # A file in the one folder the app serves: it must need a login too.
    report = tmp_path / "eval-runs" / "run-1" / "report.md"
    report.parent.mkdir(parents=True)
    report.write_text("# A report\n")
    proc, url = start_server(
        corpus, index, tmp_path / "auth.log", env={"ASSISTANT_AUTH": "alice:s3cret"}
    )
    try:
        from gradio_client import Client
        from gradio_client.exceptions import AuthenticationError

        with pytest.raises(AuthenticationError):  # the client cannot even load the app
            Client(url, verbose=False).predict(TRADE, api_name="/answer")
        # Every route of the API, called directly, and the file route: 401 without a login.
        body = json.dumps({"data": [TRADE]}).encode()
        json_type = {"Content-Type": "application/json"}
        for route in ROUTES:
            for prefix in ("gradio_api/call", "gradio_api/run"):
                code, _ = http(url + f"{prefix}{route}", "POST", body, json_type)
                assert code == 401, (prefix, route, code)
        for path in ("config", "gradio_api/info", f"gradio_api/file={report}"):
            assert http(url + path)[0] == 401, path
        code, _ = http(url + "gradio_api/queue/join", "POST", body, json_type)
        assert code == 401
        # With the login, the same file and the API answer.
        jar = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.parse.urlencode({"username": "alice", "password": "s3cret"}).encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert http(url + "login", "POST", login, form, jar)[0] == 200
        assert http(url + f"gradio_api/file={report}", opener=jar) == (200, b"# A report\n")
        ok = Client(url, auth=("alice", "s3cret"), verbose=False).predict(TRADE, api_name="/answer")
        assert "$240 billion" in ok["citations"][0]["quote"]
    finally:
        stop(proc)


@pytest.mark.parametrize("value", ["alice", ":s3cret", "alice:", ":"])
def test_a_malformed_auth_setting_is_a_clear_error(
    value: str, small_corpus: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    index = tmp_path / "index"
    with socket.socket() as taken:  # should the setting pass, the server still cannot start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = ["--corpus", str(small_corpus), "--index", str(index), "serve", "--port", port]
        out = CliRunner().invoke(cli, args, env={"ASSISTANT_AUTH": value})
    assert out.exit_code == 2, out.output
    assert isinstance(out.exception, SystemExit)  # a message, not a traceback
    assert "ASSISTANT_AUTH must look like user:password" in out.output
    assert "Serving on" not in out.output
    assert not index.exists()  # refused before anything was built


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
            found.add(socket.inet_ntop(family, words))
    return found


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, as the routing table and hostname say."""
    found = set()
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        found.add(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


@pytest.mark.parametrize("host_args", [()], ids=["default"])
def test_serve_listens_on_loopback_only_by_default(
    web_corpus: tuple[Path, Path], tmp_path: Path, host_args: tuple[str, ...]
) -> None:
    corpus, index = web_corpus
    proc, url = start_server(corpus, index, tmp_path / "bind.log", args=host_args)
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        listening = listening_addresses(port)
        assert listening == {"127.0.0.1"}, listening
        for address in other_addresses():
            with socket.socket() as s, pytest.raises(ConnectionRefusedError):
                s.connect((address, port))
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
    loaded(page)
    yield page
    context.close()


def loaded(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page has loaded its conversation: the picker says what it answers from,
    and the question box, closed until then, is open."""
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_function(
        "() => (document.querySelector('#scope-status') || {}).innerText?.includes('Answering') "
        "&& !document.querySelector('#question textarea').disabled",
        timeout=60_000,
    )


def ask(page, question: str, answers: int) -> None:
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .answer, #chat .abstain, #chat .error').length >= n "
        "&& !document.querySelector('#chat .thinking')",
        arg=answers,
        timeout=60_000,
    )
    # An extractive answer is shown a sentence at a time: wait until the last one stops growing
    # (the same text at two looks 300 ms apart).
    page.wait_for_function(
        """() => {
            const all = document.querySelectorAll('#chat .answer, #chat .abstain, #chat .error');
            const text = all.length ? all[all.length - 1].innerText : '';
            const same = window.__lastAnswerText === text;
            window.__lastAnswerText = text;
            return same;
        }""",
        polling=300,
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


@pytest.mark.browser
def test_no_question_can_be_asked_before_the_conversation_has_loaded(browser, server: str) -> None:
    """The page's load brings the browser's conversation back into the chat; a question asked
    before it lands would be wiped by it. Until then the box and the Ask button are closed."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    held: list = []  # the page's calls to the server, the load's among them, kept waiting
    released = False

    def hold(route) -> None:  # type: ignore[no-untyped-def]
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/queue/join*", hold)
    page.goto(server)
    page.wait_for_selector("#question textarea", timeout=60_000)
    for _ in range(300):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page never called its load"
    assert page.locator("#question textarea").is_disabled()
    assert page.locator("#ask").is_disabled()
    assert "Loading" in (page.locator("#question textarea").get_attribute("placeholder") or "")
    released = True
    for route in held:
        route.continue_()
    loaded(page)
    assert page.locator("#ask").is_enabled()
    assert page.evaluate("document.activeElement === document.querySelector('#question textarea')")
    ask(page, TRADE, 1)
    assert "$240 billion" in page.locator("#chat .answer").first.inner_text()
    context.close()
