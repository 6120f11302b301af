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


@pytest.mark.browser
def test_what_moscow_and_beijing_call_their_partnership_then_when(page) -> None:  # noqa: F811
    """The article's "No Limits" partnership, then the follow-up's date from the brief on the
    joint statement."""
    ask(page, "What do Moscow and Beijing call their partnership?", 1)
    first = page.locator("#chat .answer").nth(0)
    assert first.locator("strong.short-answer").inner_text() == "No Limits"
    ask(page, "When was it declared?", 2)
    second = page.locator("#chat .answer").nth(1)
    assert second.locator("strong.short-answer").inner_text() == "4 February 2022"
    card = page.locator("#sources-panel .card").first
    assert "Joint Statement" in card.inner_text()
    assert page.dialogs == [] and page.outside == []
    shot(page, "no-limits-and-when")


@pytest.mark.browser
def test_a_detail_the_sources_say_was_not_published_is_said_and_cited(page) -> None:  # noqa: F811
    """Not a bare "the sources do not answer": the sentence that says so, with its marker,
    and its card in the sources panel."""
    ask(page, "What is the price formula of the Power of Siberia gas?", 1)
    first = page.locator("#chat .answer").nth(0)
    text = first.inner_text()
    assert text.startswith("The sources do not give this; they say:")
    assert "the price formula was not published" in text
    first.locator("a.cite").first.click()
    card = page.locator("#sources-panel .card.flash")
    card.wait_for(timeout=5_000)
    assert "the price formula was not published" in card.locator("mark.cited").inner_text()
    assert page.dialogs == [] and page.outside == []
    shot(page, "not-published")
