"""Headings in PDF and HTML files become sections, never glued to the text after them; PDF
lines are read column by column and words hyphenated across lines are joined."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chunking import chunk_document
from assistant.config import ChunkSettings, Settings
from assistant.corpus.loaders import extract
from assistant.embedding import Embedder
from assistant.service import Assistant
from assistant.types import ExtractedText, Passage
from tests.conftest import DATA
from tests.helpers import build_pdf, column_runs, make_pdf

LEFT = [
    ("h2", "Northern Sea Route traffic"),
    ("p", "In 2024 the Northern Sea Route carried a"),
    ("p", "record 37.9 million tonnes of cargo, most"),
    ("p", "of it liquefied gas bound for inter-"),
    ("p", "national buyers in China and India."),
    ("p", "Transit voyages between Europe and Asia"),
    ("p", "numbered 92, also a record."),
]
RIGHT = [
    ("h2", "Icebreaker fleet"),
    ("p", "Russia operates the only fleet of nuclear"),
    ("p", "icebreakers, run by Rosatomflot from"),
    ("p", "Murmansk. Three Project 22220 ships"),
    ("p", "entered service between 2020 and 2022."),
]
HEADINGS = ["Northern Sea Route traffic", "Icebreaker fleet"]


def arctic_pdf(path: Path) -> Path:
    """A report page: a large bold title across the page, then two columns, each opening
    with a bold heading. The page is written row by row, across both columns, as some
    layout engines do: the text layer alone interleaves the columns."""
    title = column_runs([("h1", "Arctic Shipping Report")], 72, 730)
    runs = title + column_runs(LEFT, 72, 690) + column_runs(RIGHT, 320, 690)
    return build_pdf(path, [sorted(runs, key=lambda r: (-r[3], r[2]))])


def passages(extracted: ExtractedText, embedder: Embedder) -> list[Passage]:
    return chunk_document("doc", extracted, ChunkSettings(), embedder.count_tokens)


def assert_headings_stand_apart(extracted: ExtractedText, found: list[Passage]) -> None:
    """Every passage lies under a heading, and no sentence begins with a heading's words."""
    assert {p.section for p in found} == set(HEADINGS)
    for p in found:
        assert extracted.text[p.start : p.end] == p.text
        for sentence in p.sentence_texts():
            assert not any(sentence.startswith(h) for h in HEADINGS), sentence


def test_pdf_headings_become_sections(tmp_path: Path, embedder: Embedder) -> None:
    extracted = extract(arctic_pdf(tmp_path / "arctic.pdf"))
    assert [(h.level, h.text) for h in extracted.headings] == [
        (1, "Arctic Shipping Report"),
        (2, "Northern Sea Route traffic"),
        (2, "Icebreaker fleet"),
    ]
    assert extracted.title == "Arctic Shipping Report"
    for h in extracted.headings:
        assert extracted.text[h.start : h.end] == h.text
    found = passages(extracted, embedder)
    assert_headings_stand_apart(extracted, found)
    traffic = next(p for p in found if "37.9 million" in p.text)
    assert traffic.section == "Northern Sea Route traffic"
    assert traffic.sentence_texts()[0].startswith("In 2024 the Northern Sea Route carried")


def test_pdf_words_broken_across_lines_are_joined(tmp_path: Path) -> None:
    text = extract(arctic_pdf(tmp_path / "arctic.pdf")).text
    assert "bound for international buyers" in text
    assert "inter-" not in text


def test_pdf_two_columns_are_read_one_after_the_other(tmp_path: Path) -> None:
    text = extract(arctic_pdf(tmp_path / "arctic.pdf")).text
    # The left column to its end, then the right one: lines side by side are not interleaved.
    assert text.index("numbered 92, also a record.") < text.index("Icebreaker fleet")
    assert "cargo, most\nof it liquefied gas" in text
    assert "Russia operates the only fleet of nuclear\nicebreakers" in text


def test_pdf_headings_in_body_font_are_found_by_layout(tmp_path: Path) -> None:
    """The fallback: a short line without final punctuation after a finished paragraph."""
    pdf = make_pdf(
        tmp_path / "plain.pdf",
        [
            "The Kyakhta trade carried tea from China to Russia across the steppe for more",
            "than a century, and the town grew rich on it until the railway came.",
            "",
            "Caravan routes",
            "Caravans of camels crossed the Gobi in about forty days, and in winter the tea",
            "went on by sledge to Irkutsk and onwards along the Siberian road to Moscow.",
        ],
    )
    extracted = extract(pdf)
    assert [(h.level, h.text) for h in extracted.headings] == [(2, "Caravan routes")]
    assert "Caravan routes\n\nCaravans of camels" in extracted.text


def test_pdf_answer_quotes_the_sentence_without_its_heading(tmp_path: Path, embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    arctic_pdf(corpus / "arctic.pdf")
    assistant = Assistant(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder)
    assistant.index()
    answer = assistant.ask("How much cargo did the Northern Sea Route carry in 2024?")
    assert not answer.abstained
    first = answer.citations[0]
    stored = assistant.snapshot().docs[first.doc_id].text
    assert stored[first.start : first.end] == first.quote
    assert first.quote.startswith("In 2024 the Northern Sea Route carried a")
    assert first.section == "Northern Sea Route traffic"


HTML = """<!doctype html><html><head><title>Arctic Shipping Report</title>
<style>h2 { color: navy }</style></head><body>
<h1>Arctic Shipping Report</h1>
<div><h2>Northern Sea Route <em>traffic</em></h2>In 2024 the Northern Sea Route carried a record
37.9 million tonnes of cargo. Transit voyages numbered 92.</div>
<section><h3 id="x">Icebreaker fleet</h3><p>Russia operates the only fleet of nuclear
icebreakers.</p><p>Three Project 22220 ships entered service between 2020 and 2022.</p></section>
</body></html>"""


def test_html_headings_become_sections(tmp_path: Path, embedder: Embedder) -> None:
    page = tmp_path / "arctic.html"
    page.write_text(HTML, encoding="utf-8")
    extracted = extract(page)
    assert [(h.level, h.text) for h in extracted.headings] == [
        (1, "Arctic Shipping Report"),
        (2, "Northern Sea Route traffic"),
        (3, "Icebreaker fleet"),
    ]
    found = passages(extracted, embedder)
    for p in found:
        assert extracted.text[p.start : p.end] == p.text
        for sentence in p.sentence_texts():
            assert not sentence.startswith(("Northern Sea Route traffic", "Icebreaker fleet"))
    assert {p.section for p in found} == {
        "Northern Sea Route traffic",
        "Northern Sea Route traffic › Icebreaker fleet",
    }


@pytest.mark.parametrize("name", ["arctic.pdf", "arctic.html"])
def test_a_heading_is_a_block_of_its_own(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".pdf"):
        arctic_pdf(path)
    else:
        path.write_text(HTML, encoding="utf-8")
    text = extract(path).text
    assert "Northern Sea Route traffic\n\nIn 2024 the Northern Sea Route" in text
    assert "Icebreaker fleet\n\nRussia operates" in text


PRINTED = DATA / "layout" / "printed-from-html.pdf"  # Chromium's "print to PDF" of the .html


def test_a_pdf_printed_from_a_web_page_keeps_its_headings_apart(embedder: Embedder) -> None:
    extracted = extract(PRINTED)
    assert [(h.level, h.text) for h in extracted.headings] == [
        (1, "Arctic Shipping Report"),
        (2, "Northern Sea Route traffic"),
        (2, "Icebreaker fleet"),
        (3, "Two columns"),
    ]
    text = extracted.text
    assert "Northern Sea Route traffic\n\nIn 2024 the Northern Sea Route carried" in text
    # The two-column part is read column by column, paragraph by paragraph.
    assert text.index("since 2013.") < text.index("Environmental groups warn")
    found = passages(extracted, embedder)
    for p in found:
        assert text[p.start : p.end] == p.text
        for sentence in p.sentence_texts():
            assert not sentence.startswith(("Northern Sea Route traffic", "Icebreaker fleet"))
    cited = next(p for p in found if "37.9 million" in p.text)
    assert cited.section == "Northern Sea Route traffic"


def test_a_bold_paragraph_stays_text_to_quote(tmp_path: Path) -> None:
    runs = column_runs([("h2", "Northern Sea Route traffic"), *LEFT[1:]], 72, 700)
    runs += [
        ("bold", 10, 72, 560, "Summary: traffic on the route set a record in 2024, and"),
        ("bold", 10, 72, 547, "the icebreaker fleet grew by three ships since 2020."),
    ]
    extracted = extract(build_pdf(tmp_path / "bold.pdf", [runs]))
    assert [h.text for h in extracted.headings] == ["Northern Sea Route traffic"]
    assert "Summary: traffic on the route set a record in 2024, and\nthe icebreaker" in (
        extracted.text
    )


FRONT = """---
title: "Penguin Facts"
author: Jane Doe
date: 2023-05-01
tags: [birds, antarctica]
---

Emperor penguins can dive to 565 metres.
"""


def test_markdown_front_matter_describes_the_document_and_is_not_its_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "penguins.md"
    path.write_text(FRONT)
    got = extract(path)
    assert got.title == "Penguin Facts" and dict(got.about) == {
        "author": "Jane Doe",
        "date": "2023-05-01",
    }
    assert len(got.text) == len(FRONT)  # blanked, not cut: offsets are the file's
    assert got.text.strip() == "Emperor penguins can dive to 565 metres."
    start = got.text.index("Emperor")
    assert FRONT[start:].startswith("Emperor")


@pytest.mark.parametrize(
    "text",
    [
        "---\n\nNo closing line, so this is text: title: kept.\n",
        "---\nIntro paragraph here.\n\nSection\n---\nBody text, title: kept.\n",
    ],
)
def test_a_rule_that_opens_a_markdown_file_is_not_front_matter(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rule.md"
    path.write_text(text)
    got = extract(path)
    assert got.text == text and got.about == ()


def test_the_manifest_beats_front_matter_and_front_matter_beats_the_file_name(
    tmp_path: Path,
) -> None:
    from assistant.corpus import scan

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "penguins.md").write_text(FRONT)
    (corpus / "seals.md").write_text(FRONT.replace("Penguin Facts", "Seal Facts"))
    (corpus / "sources.toml").write_text(
        '[[documents]]\nfile = "seals.md"\ntitle = "Seals, per the manifest"\n'
    )
    meta = {d.id: d.meta for d in scan(corpus).documents}
    assert (meta["penguins"].title, meta["penguins"].author) == ("Penguin Facts", "Jane Doe")
    assert meta["penguins"].date == "2023-05-01"
    assert (meta["seals"].title, meta["seals"].author) == ("Seals, per the manifest", "Jane Doe")
