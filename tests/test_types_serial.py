"""The JSON shapes of the types that cross module borders (what `ask --json`, `sources --json`,
saved chats and the index's records hold), and reading them back."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from assistant.followup import Turn
from assistant.types import (
    Answer,
    AnswerSentence,
    Citation,
    CitationNote,
    DocumentMeta,
    Passage,
    ShortAnswer,
)

NOTE = CitationNote("Gas", "qualifies", "The pipeline opened in 2019.", "pos", "Power of Siberia")
CITATION = Citation(
    n=1,
    passage_id="pos:1",
    doc_id="pos",
    title="Power of Siberia",
    url="",
    kind="source",
    section="Route",
    start=10,
    end=20,
    quote="It runs 3,000 km.",
    passage_start=0,
    passage_end=40,
    current_to="2025-11",
    note=NOTE,
)


def test_a_citation_is_written_field_by_field_with_its_note_nested() -> None:
    assert json.dumps(CITATION.to_dict()) == (
        '{"n": 1, "passage_id": "pos:1", "doc_id": "pos", "title": "Power of Siberia", '
        '"url": "", "kind": "source", "section": "Route", "start": 10, "end": 20, '
        '"quote": "It runs 3,000 km.", "passage_start": 0, "passage_end": 40, '
        '"current_to": "2025-11", "note": {"heading": "Gas", "verdict": "qualifies", '
        '"public_record": "The pipeline opened in 2019.", "brief_id": "pos", '
        '"brief_title": "Power of Siberia"}}'
    )


def test_a_citation_reads_back_with_its_note_and_ignores_unknown_keys() -> None:
    data = {**CITATION.to_dict(), "added_later": True}
    back = Citation.from_dict(data)
    assert back == CITATION and isinstance(back.note, CitationNote)
    assert Citation.from_dict({**data, "note": None}).note is None


def test_a_passage_writes_its_sentences_as_lists_and_reads_them_back_as_pairs() -> None:
    p = Passage("d:1", "d", 5, 25, "One. Two three four.", "Intro", 0, ((5, 9), (10, 25)))
    data = p.to_dict()
    assert data == {
        "id": "d:1",
        "doc_id": "d",
        "start": 5,
        "end": 25,
        "text": "One. Two three four.",
        "section": "Intro",
        "ordinal": 0,
        "sentences": [[5, 9], [10, 25]],
    }
    assert Passage.from_dict(json.loads(json.dumps(data))) == p
    bare = {k: v for k, v in data.items() if k not in ("section", "ordinal")}
    assert Passage.from_dict(bare) == Passage("d:1", "d", 5, 25, p.text, "", 0, p.sentences)


def test_document_metadata_round_trips_and_tolerates_null_references() -> None:
    meta = DocumentMeta("pos", "Power of Siberia", "pos.md", references=("a", "b"))
    data = meta.to_dict()
    assert list(data) == [
        *("id", "title", "file", "kind", "author", "publisher", "date", "url", "license"),
        *("references", "current_to"),
    ]
    assert data["references"] == ["a", "b"]
    assert DocumentMeta.from_dict({**data, "unknown": 1}) == meta
    assert DocumentMeta.from_dict({**data, "references": None}).references == ()


def test_an_answer_and_a_turn_round_trip_through_json() -> None:
    answer = Answer(
        question="How long is it?",
        text="It runs 3,000 km. [1]",
        abstained=False,
        sentences=[AnswerSentence("It runs 3,000 km.", [1], support=0.93)],
        citations=[CITATION],
        standalone_question="How long is it? (Power of Siberia)",
        short_answer=ShortAnswer("3,000 km", 1, "pos:1", "pos", 18, 26, "figure"),
        confidence=0.87654,
    )
    data = json.loads(json.dumps(answer.to_dict(include_passages=False)))
    assert data["sentences"] == [
        {"text": "It runs 3,000 km.", "citations": [1], "support": 0.93, "supported": True}
    ]
    assert data["short_answer"]["kind"] == "figure" and data["confidence"] == 0.8765
    back = Answer.from_dict(data)
    assert back.to_dict(include_passages=False) == data
    assert back.citations == [CITATION] and back.short_answer == answer.short_answer
    turn = Turn("How long is it?", "How long is it? (Power of Siberia)", answer, at=12.5)
    assert Turn.from_dict(json.loads(json.dumps(turn.to_dict()))).to_dict() == turn.to_dict()


def test_a_record_missing_a_required_field_is_refused() -> None:
    data = CITATION.to_dict()
    del data["quote"]
    with pytest.raises((TypeError, ValidationError)):
        Citation.from_dict(data)
