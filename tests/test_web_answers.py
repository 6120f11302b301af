"""In a real browser: the answer opens with the short answer, highlighted where the source
states it, and a follow-up is answered from the conversation."""

from __future__ import annotations

import pytest

from tests.test_web import ask, browser, page, server, shot  # noqa: F401 (fixtures)


@pytest.mark.browser
def test_the_short_answer_leads_and_is_highlighted_in_its_source(page) -> None:  # noqa: F811
    ask(page, "How large was bilateral trade between Russia and China in 2023?", 1)
    first = page.locator("#chat .answer").nth(0)
    assert first.locator("strong.short-answer").inner_text() == "$240 billion"
    card = page.locator("#sources-panel .card").first
    assert card.locator("mark.cited strong.short-answer").inner_text() == "$240 billion"
    ask(page, "What was the Treaty of Aigun?", 2)
    ask(page, "When was it signed?", 3)
    third = page.locator("#chat .answer").nth(2)
    assert third.locator("strong.short-answer").inner_text() == "28 May 1858"
    assert page.dialogs == [] and page.outside == []
    shot(page, "short-answer-and-follow-up")
