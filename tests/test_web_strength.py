"""In a real browser: every answer shows how strong it is, with the calibrated probability on
hover; an abstention shows none."""

from __future__ import annotations

import re

import pytest

from tests.test_web import TRADE, ask, browser, page, server, shot  # noqa: F401 (fixtures)


@pytest.mark.browser
def test_the_strength_label_is_shown_with_its_number_on_hover(page) -> None:  # noqa: F811
    ask(page, TRADE, 1)
    ask(page, "What was the Treaty of Aigun?", 2)
    ask(page, "Who won the 1998 World Cup?", 3)
    lines = page.locator("#chat .strength-line")
    assert lines.count() == 2  # the two answers; the abstention has none
    for i in range(2):
        label = lines.nth(i).locator(".strength")
        assert label.is_visible()
        word = label.inner_text()
        assert word in ("strong", "moderate", "weak")
        title = label.get_attribute("title") or ""
        number = re.match(r"(\d\.\d\d): the calibrated probability", title)
        assert number, title
        value = float(number.group(1))
        expected = "strong" if value >= 0.8 else "moderate" if value >= 0.5 else "weak"
        assert word == expected
        assert "Strength:" in lines.nth(i).inner_text()
    assert page.locator("#chat .abstain").count() == 1
    assert page.dialogs == [] and page.outside == []
    lines.first.locator(".strength").hover()
    shot(page, "answer-strength")
