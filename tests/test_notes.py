"""corpus/NOTES.md: parsed, located in the article, and carried by the citations it concerns."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from assistant.cli import cli
from assistant.cli.terminal import answer_text
from assistant.notes import attach_notes, find_quote, load_notes, parse_notes
from assistant.service import Assistant
from assistant.text import normalize_for_match
from assistant.types import Answer, Citation
from tests.conftest import CORPUS

SAMPLE = """# Where the sources and the article differ

Intro text that is not an entry.

## Trade in 2023

- Article:
  > Trade surpassed $90 billion in 2023 - a “dramatic” increase
- Brief: `trade-brief`
- Verdict: Contradicts
- Public record: customs figures put it at 89.4 billion
  dollars in 2023.

## A name

- Article:
  > The treaty of 1860
  > was signed in Peking
- Brief: `treaty-brief`
- Public record: usually called the Convention of Peking.

## Not an entry: no brief

- Article:
  > Something.
"""


def test_entries_are_parsed_with_verdict_and_record() -> None:
    notes = parse_notes(SAMPLE)
    assert [(n.heading, n.brief_id, n.verdict) for n in notes] == [
        ("Trade in 2023", "trade-brief", "contradicts"),
        ("A name", "treaty-brief", ""),
    ]
    assert notes[0].quotes == ("Trade surpassed $90 billion in 2023 - a “dramatic” increase",)
    assert notes[0].public_record == "customs figures put it at 89.4 billion dollars in 2023."
    assert notes[1].quotes == ("The treaty of 1860", "was signed in Peking")


def test_a_quote_is_found_however_its_quotes_dashes_and_spaces_are_written() -> None:
    text = 'Before. Trade  surpassed $90 billion\nin 2023—a "Dramatic" increase. After.'
    span = find_quote(text, "Trade surpassed $90 billion in 2023 - a “dramatic” increase")
    assert span is not None
    start, end = span
    assert text[start:end] == 'Trade  surpassed $90 billion\nin 2023—a "Dramatic" increase'
    assert find_quote(text, "Trade fell in 2023") is None


def test_every_note_points_at_a_sentence_of_the_stored_article(assistant: Assistant) -> None:
    """Each NOTES.md quote is found in the article as the index stores it: a note can never
    point nowhere."""
    notes = load_notes(CORPUS)
    assert len(notes) >= 8
    docs = assistant.snapshot().docs
    article = docs["sino-russian-relations"].text
    missing = []
    for note in notes:
        assert note.brief_id in docs, note.brief_id
        for quote in note.quotes:
            span = find_quote(article, quote)
            if span is None:
                missing.append(f"{note.heading}: {quote[:60]}")
            else:
                found = normalize_for_match(article[span[0] : span[1]])
                assert found == normalize_for_match(quote)
    assert missing == []


def test_a_cited_noted_sentence_carries_the_note(assistant: Assistant) -> None:
    answer = assistant.ask("What does the article say about Baidu?")
    cited = [c for c in answer.citations if c.doc_id == "sino-russian-relations"]
    assert cited and "Baidu’s provision in the satellite ecosystem" in cited[0].quote
    note = cited[0].note
    assert note is not None
    assert (note.heading, note.brief_id) == ("BeiDou, not Baidu", "beidou-navigation-system")
    assert note.brief_title == "BeiDou: China's Satellite Navigation System"
    assert "BeiDou" in note.public_record
    # A citation of a brief, or of an article sentence no note mentions, carries none.
    assert all(c.note is None for c in answer.citations if c.doc_id != "sino-russian-relations")


def test_only_overlapping_citations_get_a_note(assistant: Assistant) -> None:
    docs = assistant.snapshot().docs
    article = docs["sino-russian-relations"].text
    start, end = find_quote(article, "Baidu’s provision in the satellite ecosystem") or (0, 0)

    def cite(n: int, s: int, e: int) -> Citation:
        return Citation(n, "p", "sino-russian-relations", "t", "", "article", "", s, e, "", s, e)

    answer = Answer("q", "a", False, citations=[cite(1, start - 40, start), cite(2, end - 5, end)])
    attach_notes(answer, docs, CORPUS)
    assert answer.citations[0].note is None  # ends where the noted sentence begins
    assert answer.citations[1].note is not None


def test_ask_json_and_text_show_the_note(default_index: Path) -> None:
    runner = CliRunner()
    base = ["--corpus", str(CORPUS), "--index", str(default_index), "ask"]
    question = "Who said Russia will have to defend its Far East from China?"
    data = json.loads(runner.invoke(cli, [*base, question, "--json"]).stdout)
    notes = [c["note"] for c in data["citations"] if c["note"]]
    assert notes and notes[0]["heading"] == "The general quoted on the Far East"
    assert notes[0]["brief_id"] == "vostok-and-joint-sea-exercises"
    assert set(notes[0]) == {"heading", "verdict", "public_record", "brief_id", "brief_title"}
    assert all("current_to" in c for c in data["citations"])
    verb = {"": "qualifies"}.get(notes[0]["verdict"], notes[0]["verdict"])
    text = runner.invoke(cli, [*base, question]).stdout
    assert (
        f"    Note: a source {verb} this: The general quoted on the Far East "
        "(see vostok-and-joint-sea-exercises)\n" in text
    )


def test_an_answer_read_back_keeps_its_notes(assistant: Assistant) -> None:
    answer = assistant.ask("What did Leonid Iashov say?")
    again = Answer.from_dict(json.loads(json.dumps(answer.to_dict())))
    assert [c.note for c in again.citations] == [c.note for c in answer.citations]
    assert "Note: a source" in answer_text(again)


def test_no_notes_file_means_no_notes(tmp_path: Path, assistant: Assistant) -> None:
    docs = assistant.snapshot().docs
    answer = assistant.ask("What did Leonid Iashov say?")
    attach_notes(answer, docs, tmp_path)
    assert all(c.note is None for c in answer.citations)
