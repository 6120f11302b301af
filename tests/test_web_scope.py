"""The web app's scope: the picker above the chat keeps the conversation, follow-ups included,
to the chosen documents, in a real headless Chromium; the JSON API takes a scope too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_web import (
    CHROMIUM,
    TRADE,
    _browser,
    ask,
    client,
    http,
    shot,
    start_server,
    stop,
)

TRADE_BRIEF = "Russia–China Trade, 2021–2024"
ARTICLE = "Sino-Russian Relations: Unlimited Partnership or Hierarchical Friendship?"


@pytest.fixture(scope="module")
def scope_server(
    web_corpus: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    corpus, index = web_corpus
    proc, url = start_server(corpus, index, tmp_path_factory.mktemp("logs") / "server.log")
    yield url
    stop(proc)


def test_the_answer_api_keeps_to_a_scope(scope_server: str) -> None:
    c = client(scope_server)
    unscoped = c.predict(TRADE, api_name="/answer")
    assert unscoped["citations"][0]["doc_id"] == "sino-russian-relations"
    data = c.predict(TRADE, ["russia-china-trade"], None, api_name="/answer")
    assert data["scope"] == {"docs": ["russia-china-trade"], "kinds": []}
    assert data["citations"] and {x["doc_id"] for x in data["citations"]} == {"russia-china-trade"}
    bad = c.predict(TRADE, ["nope"], None, api_name="/answer")
    assert bad["error"] == "No document with id 'nope' in the index."
    assert "russia-china-trade" in bad["hint"]


def completion(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = json.dumps({"model": "assistant-extractive", **body}).encode()
    headers = {"Content-Type": "application/json"}
    status, raw = http(url + "v1/chat/completions", "POST", data, headers)
    return status, json.loads(raw)


def test_the_openai_api_takes_a_scope_extension_field(scope_server: str) -> None:
    scope = {"docs": ["russia-china-trade"]}
    status, body = completion(
        scope_server, {"messages": [{"role": "user", "content": TRADE}], "scope": scope}
    )
    assert status == 200, body
    assert body["scope"] == {"docs": ["russia-china-trade"], "kinds": []}
    assert {c["doc_id"] for c in body["citations"]} == {"russia-china-trade"}
    # A follow-up with the same scope stays in it (unscoped, it cites other documents too).
    messages = [
        {"role": "user", "content": TRADE},
        {"role": "assistant", "content": body["choices"][0]["message"]["content"]},
        {"role": "user", "content": "What did they export?"},
    ]
    status, body = completion(scope_server, {"messages": messages, "scope": scope})
    assert status == 200 and {c["doc_id"] for c in body["citations"]} == {"russia-china-trade"}
    for bad, said in (
        ({"docs": ["nope"]}, "No document with id 'nope' in the index."),
        ({"kinds": ["essay"]}, "Unknown document kind 'essay'."),
        ({"docs": [3]}, "The scope's docs must be a list of strings."),
        ("russia-china-trade", "scope must be an object"),
        ({"doc": ["russia-china-trade"]}, "The scope has an unknown key 'doc'"),
        ({"docs": ["  "]}, "The scope's docs hold an empty string."),
    ):
        status, body = completion(
            scope_server, {"messages": [{"role": "user", "content": TRADE}], "scope": bad}
        )
        assert status == 400 and body["error"]["param"] == "scope", body
        assert body["error"]["message"].startswith(said)
    assert (
        "russia-china-trade"
        in completion(
            scope_server,
            {"messages": [{"role": "user", "content": TRADE}], "scope": {"docs": ["x"]}},
        )[1]["error"]["message"]
    )


@pytest.fixture
def page(scope_server: str) -> Iterator[object]:
    sync_playwright = _browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        page.goto(scope_server)
        page.wait_for_selector("#question textarea", timeout=60_000)
        # The page has loaded its conversation when the picker says what it answers from.
        page.wait_for_function(
            "() => (document.querySelector('#scope-status') || {}).innerText?.includes('Answering')",
            timeout=60_000,
        )
        yield page
        browser.close()


def cited_titles(page, turn: int) -> set[str]:  # type: ignore[no-untyped-def]
    """The titles on the citation cards of one turn of the sources panel (1: the first)."""
    turns = page.locator("#sources-panel .turn")
    block = turns.nth(turns.count() - turn)
    return {t.strip() for t in block.locator(".card .title").all_inner_texts()}


@pytest.mark.browser
def test_a_scoped_conversation_cites_only_the_chosen_documents(page) -> None:  # type: ignore[no-untyped-def]
    assert "every document" in page.locator("#scope-status").inner_text()
    page.locator("#scope-docs input").click()
    page.get_by_role("option", name=TRADE_BRIEF).click()
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => document.querySelector('#scope-status').innerText.includes('1 document')"
    )
    assert TRADE_BRIEF in page.locator("#scope-status").inner_text()
    ask(page, TRADE, 1)
    assert cited_titles(page, 1) == {TRADE_BRIEF}
    assert "240 billion" in page.locator("#chat .answer").first.inner_text()
    ask(page, "What did they export?", 2)
    assert cited_titles(page, 2) == {TRADE_BRIEF}  # the follow-up keeps the scope
    shot(page, "chat-scope")
    # The article alone, by its kind: the same question now cites the article.
    page.locator("#scope-docs .token-remove, #scope-docs [aria-label='Remove']").first.click()
    page.get_by_label("The article").check()
    page.wait_for_function(
        "() => document.querySelector('#scope-status').innerText.includes('Sino-Russian')"
    )
    ask(page, TRADE, 3)
    assert cited_titles(page, 3) == {ARTICLE}
    # The article does not say: the reply says so and names where to look instead.
    ask(page, "When did deliveries through the Power of Siberia pipeline begin?", 4)
    said = page.locator("#chat .abstain").last.inner_text()
    assert said.startswith("The chosen documents do not say.")
    assert "\u201cPower of Siberia and Power of Siberia 2\u201d (passage power-of-siberia:" in said
    panel = page.locator("#sources-panel .turn").first.inner_text()
    assert "No citation: the chosen documents do not say." in panel
    shot(page, "chat-scope-kind")
