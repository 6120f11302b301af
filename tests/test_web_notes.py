"""In a real browser: a citation of an article sentence that corpus/NOTES.md discusses says so,
and its link opens the brief in the Sources tab."""

from __future__ import annotations

import pytest

from tests.test_web import ask, browser, page, server, shot  # noqa: F401 (fixtures)


@pytest.mark.browser
def test_a_noted_citation_links_to_its_brief(page) -> None:  # noqa: F811
    ask(page, "What does the article say about Baidu?", 1)
    note = page.locator("#sources-panel .card-note").first
    assert "BeiDou, not Baidu" in note.inner_text()
    assert "Note: a source" in note.inner_text()
    note.locator("a.brief-link").click()
    page.wait_for_function(
        "() => { const h = document.querySelector('#document-view h3');"
        " return h && h.id === 'doc-beidou-navigation-system'; }",
        timeout=30_000,
    )
    assert page.get_by_role("tab", name="Sources").get_attribute("aria-selected") == "true"
    assert page.dialogs == [] and page.outside == []
    shot(page, "note-opens-brief")
