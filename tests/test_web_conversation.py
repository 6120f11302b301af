"""In a real browser: what the chat's own controls do to the conversation. Export downloads
all of it, the trash icon starts a new one, a first question pointing at nothing is asked
back in the sources panel too, and messages are labelled and copied as they read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_web import TRADE, ask, browser, loaded, page, server, shot  # noqa: F401 (fixtures)

AIGUN = "What was the Treaty of Aigun?"
EMPTY_PANEL = "Sources of each answer appear here"


def export_opened(tab) -> None:  # type: ignore[no-untyped-def]
    """Wait until the Export button holds the conversation as it now is: it is closed while
    an answer is written and opened again once it holds the file."""
    tab.wait_for_function(
        "() => !document.querySelector('#export').disabled", polling=100, timeout=10_000
    )


@pytest.mark.browser
def test_one_export_click_downloads_every_turn_so_far(page, tmp_path: Path) -> None:  # noqa: F811
    assert page.locator("#export").is_disabled()  # nothing to export yet
    ask(page, TRADE, 1)
    ask(page, AIGUN, 2)
    export_opened(page)
    with page.expect_download(timeout=10_000) as download:
        page.click("#export")
    path = tmp_path / "conversation.md"
    download.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert f"## 1. {TRADE}" in text and f"## 2. {AIGUN}" in text
    assert "Aigun" in text.split("## 2.", 1)[1].split("\n", 1)[1]  # the second answer too
    assert page.dialogs == []


@pytest.mark.browser
def test_the_chat_trash_icon_starts_a_new_conversation(page) -> None:  # noqa: F811
    ask(page, AIGUN, 1)
    export_opened(page)
    assert "1. What was the Treaty of Aigun?" in page.locator("#sources-panel").inner_text()
    page.locator("#chat button[aria-label='Clear']").click()
    page.wait_for_function(
        "text => document.querySelector('#sources-panel').innerText.includes(text)",
        arg=EMPTY_PANEL,
        timeout=10_000,
    )
    # Closed again last, once the browser keeps the new conversation's key.
    page.wait_for_function("() => document.querySelector('#export').disabled", timeout=10_000)
    page.reload()
    loaded(page)
    assert page.locator("#chat .answer, #chat .abstain").count() == 0
    assert EMPTY_PANEL in page.locator("#sources-panel").inner_text()
    # The old turn is no context either: "it" points at nothing now.
    ask(page, "When was it signed?", 1)
    assert "refer to?" in page.locator("#chat .abstain").first.inner_text()
    assert "Aigun" not in page.locator("#sources-panel").inner_text()
    shot(page, "trash-starts-a-new-conversation")


@pytest.mark.browser
def test_a_question_pointing_at_nothing_is_asked_back_in_the_panel_too(page) -> None:  # noqa: F811
    ask(page, "When was it signed?", 1)
    said = page.locator("#chat .abstain").first.inner_text()
    assert said.startswith("What does “it” refer to?")
    panel = page.locator("#sources-panel .panel-none").first.inner_text()
    assert "What does “it” refer to?" in panel
    assert "do not answer" not in panel
    shot(page, "pointing-at-nothing")


@pytest.mark.browser
def test_messages_are_labelled_as_they_read_and_have_no_html_copy_button(page) -> None:  # noqa: F811
    typed = "<img src=x onerror=alert(1)> What is the SCO?"
    ask(page, typed, 1)
    user = page.locator("#chat [data-testid='user']").first
    assert user.inner_text().strip() == typed  # shown as typed, and inert
    page.wait_for_function(
        "label => document.querySelector(\"#chat [data-testid='user']\")"
        ".getAttribute('aria-label') === label",
        arg=f"user's message: {typed}",
        timeout=5_000,
    )
    bot = page.locator("#chat [data-testid='bot']").first.get_attribute("aria-label") or ""
    assert "class=" not in bot and "&#" not in bot  # the answer's text, not its markup
    # The per-message copy icon copied the answer's HTML: there is none.
    assert page.locator("#chat button[aria-label='Copy message']").count() == 0
    assert page.dialogs == [] and page.evaluate("() => window.__pwned") is None
