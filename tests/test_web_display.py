"""In a real browser: how the page shows what it shows. Highlights and notes readable in the
dark theme, a long question kept to a short heading that stays inside the sources panel, and
the lookup's messages worded for the page rather than the command line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_web import TRADE, ask, browser, loaded, page, server, shot  # noqa: F401 (fixtures)

# The lowest contrast of text on its background in the elements matched, computed in the page
# (WCAG 2 relative luminance; translucent colours composited over what lies beneath them).
LOWEST_CONTRAST = """selector => {
  const rgba = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] === 1) break;
    }
    return layers.reduceRight((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const found = [];
  for (const el of document.querySelectorAll(selector)) {
    const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (!text) continue;
    const bg = background(el);
    const fg = over(rgba(getComputedStyle(el).color), bg);
    const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    found.push([(a + 0.05) / (b + 0.05), el.tagName + '.' + el.className + ': ' + text.slice(0, 40)]);
  }
  return found.sort((x, y) => x[0] - y[0]);
}"""
HIGHLIGHTS = ", ".join(
    f"{root} {part}"
    for root in ("#sources-panel", "#support-view", "#context-view")
    for part in ("mark.cited", "mark.cited *", ".card-note", ".card-note *")
)


@pytest.fixture
def dark_page(browser, server: str) -> Iterator[object]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    dark = context.new_page()
    dark.goto(server + "?__theme=dark")
    loaded(dark)
    yield dark
    context.close()


def lowest_contrast(tab) -> list:  # type: ignore[no-untyped-def]
    """The elements' contrasts, lowest first, each with what it says."""
    return tab.evaluate(LOWEST_CONTRAST, HIGHLIGHTS)


@pytest.mark.browser
def test_highlights_and_notes_are_readable_in_the_dark_theme(dark_page) -> None:
    assert dark_page.evaluate("() => document.body.classList.contains('dark')")
    ask(dark_page, TRADE, 1)  # its article sentence has a note that a source confirms it
    ask(dark_page, "What does the article say about Baidu?", 2)  # one that a source contradicts
    assert dark_page.locator("#sources-panel .card-note.note-confirms").count() >= 1
    assert dark_page.locator("#sources-panel .card-note.note-contradicts").count() >= 1
    panel = lowest_contrast(dark_page)
    assert any("MARK" in what for _, what in panel) and any("card-note" in w for _, w in panel)
    assert panel[0][0] >= 4.5, panel[:3]
    shot(dark_page, "dark-sources-panel")
    dark_page.get_by_role("tab", name="Citation lookup").click()
    dark_page.fill("#claim textarea", "China supplies microchips and cars to Russia")
    dark_page.click("#find")
    dark_page.wait_for_selector("#support-view .card mark.cited", timeout=30_000)
    passage_id = dark_page.locator("#support-view .card-foot code").first.inner_text()
    dark_page.fill("#passage-id textarea", passage_id)
    dark_page.click("#show")
    dark_page.wait_for_selector("#context-view mark.cited", timeout=30_000)
    lookup = lowest_contrast(dark_page)
    assert sum("MARK" in what for _, what in lookup) > sum("MARK" in what for _, what in panel)
    assert lookup[0][0] >= 4.5, lookup[:3]
    shot(dark_page, "dark-lookup")


@pytest.mark.browser
def test_a_long_question_gets_a_short_heading_inside_the_panel(page) -> None:  # noqa: F811
    word = "Sibirskaya" * 60  # 600 characters with no place to break
    question = f"What is the Power of Siberia pipeline {word}?" + " Tell me more." * 95
    assert 1900 < len(question) <= 2000
    ask(page, question, 1)
    heading = page.locator("#sources-panel .turn-q").first
    shown = heading.inner_text()
    assert shown.startswith("1. What is the Power of Siberia") and shown.endswith("…")
    assert len(shown) < 220
    assert heading.get_attribute("title") == question  # all of it on hover
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('#sources-panel, #sources-panel .turn-q, """
        """#chat [data-testid="user"]')].filter(e => e.scrollWidth > e.clientWidth + 1)"""
        """.map(e => e.className)"""
    )
    assert overflow == []
    assert heading.bounding_box()["height"] < 200  # type: ignore[index]
    shot(page, "long-question")


@pytest.mark.browser
def test_lookup_messages_name_the_page_not_the_command_line(page) -> None:  # noqa: F811
    page.get_by_role("tab", name="Citation lookup").click()
    page.click("#find")
    page.wait_for_selector("#support-view .error", timeout=30_000)
    empty = page.locator("#support-view .error").inner_text()
    assert "for example: China supplies microchips to Russia" in empty
    page.fill("#passage-id textarea", "nonexistent:123")
    page.click("#show")
    page.wait_for_selector("#context-view .error", timeout=30_000)
    missing = page.locator("#context-view .error").inner_text()
    assert "No passage with id 'nonexistent:123'" in missing
    assert "Passage ids appear under each citation in the Sources panel" in missing
    for said in (empty, missing):
        assert "assistant " not in said and "--json" not in said, said
    shot(page, "lookup-messages")
