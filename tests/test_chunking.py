import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.chunking import chunk_document, passage_id
from assistant.config import ChunkSettings
from assistant.corpus import extract, scan
from assistant.embedding import Embedder
from assistant.types import ExtractedText, Heading
from tests.conftest import CORPUS, DATA


def check_passages(
    doc_id: str, extracted: ExtractedText, embedder: Embedder, settings: ChunkSettings
) -> list:
    passages = chunk_document(doc_id, extracted, settings, embedder.count_tokens)
    text = extracted.text
    for p in passages:
        assert text[p.start : p.end] == p.text
        assert p.sentences[0][0] == p.start and p.sentences[-1][1] == p.end
        for s, e in p.sentences:
            assert p.start <= s < e <= p.end
        assert embedder.count_tokens([p.text])[0] <= settings.max_tokens + len(p.sentences) * 2
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert len({p.id for p in passages}) == len(passages)
    return passages


def test_every_corpus_passage_is_an_exact_span(embedder: Embedder) -> None:
    settings = ChunkSettings()
    total = 0
    for doc in scan(CORPUS).documents:
        passages = check_passages(doc.id, doc.extracted, embedder, settings)
        assert passages, doc.id
        total += len(passages)
        for p in passages:
            assert embedder.count_tokens([p.text])[0] <= settings.max_tokens
    assert total > 30


def test_passages_follow_paragraphs_and_carry_their_section(embedder: Embedder) -> None:
    doc = next(d for d in scan(CORPUS).documents if d.id == "sino-russian-relations")
    passages = chunk_document(doc.id, doc.extracted, ChunkSettings(), embedder.count_tokens)
    trade = next(p for p in passages if "$240 billion" in p.text)
    assert trade.section == "Growing Economic Dependence on China"
    assert trade.text.startswith("Moreover, Russia’s growing isolation")
    assert passages[0].section == ""  # the introduction, before any section heading
    assert not any(p.text.startswith("#") for p in passages)


def test_reference_sections_are_not_indexed(embedder: Embedder) -> None:
    passages = chunk_document(
        "baikal", extract(DATA / "baikal.md"), ChunkSettings(), embedder.count_tokens
    )
    assert [p.section for p in passages] == ["", "Wildlife"]
    assert not any("example.org" in p.text for p in passages)


def test_long_paragraphs_split_at_sentences_within_the_budget(embedder: Embedder) -> None:
    sentence = (
        "The pipeline carries natural gas from eastern Siberia to the Chinese border every day. "
    )
    text = "# Title\n\n" + sentence * 40
    settings = ChunkSettings(max_tokens=64, min_tokens=10)
    passages = check_passages(
        "long", ExtractedText(text, "Title", (Heading(0, 7, 1, "Title"),)), embedder, settings
    )
    assert len(passages) > 5
    assert all(p.text.endswith("day.") for p in passages)


def test_a_sentence_longer_than_the_budget_is_cut_at_words(embedder: Embedder) -> None:
    text = " ".join(["word"] * 400) + "."
    settings = ChunkSettings(max_tokens=50, min_tokens=0)
    passages = check_passages("run-on", ExtractedText(text, None), embedder, settings)
    assert len(passages) >= 8
    for p in passages:
        assert embedder.count_tokens([p.text])[0] <= 50


def test_a_huge_line_without_punctuation_is_cut_between_words(embedder: Embedder) -> None:
    """Pieces cut at words by an estimate can still be over the budget; they are halved
    again, at a space, not inside a word."""
    pick = random.Random(7).choice
    vocabulary = "a of to antidisestablishmentarianism floccinaucinihilipilification xq7zv"
    text = " ".join(pick(vocabulary.split()) for _ in range(3000))
    settings = ChunkSettings(max_tokens=40, min_tokens=0)
    passages = check_passages("huge", ExtractedText(text, None), embedder, settings)
    assert len(passages) > 20
    for p in passages:
        assert (p.start == 0 or text[p.start - 1] == " ") and (
            p.end == len(text) or text[p.end] == " "
        ), (text[p.start - 5 : p.start + 5], text[p.end - 5 : p.end + 5])


def test_short_paragraphs_join_the_next_one_in_their_section(
    embedder: Embedder, tmp_path: Path
) -> None:
    path = tmp_path / "join.md"
    path.write_text(
        "# T\n\n## A\n\nShort one.\n\nA longer paragraph that follows it and says more about the topic at hand.\n\n## B\n\nTiny."
    )
    passages = check_passages("join", extract(path), embedder, ChunkSettings(min_tokens=8))
    assert [p.section for p in passages] == ["A", "B"]
    assert passages[0].text.startswith("Short one.\n\nA longer")


def test_ids_are_stable_and_depend_on_content(embedder: Embedder) -> None:
    extracted = extract(DATA / "baikal.md")
    first = chunk_document("baikal", extracted, ChunkSettings(), embedder.count_tokens)
    again = chunk_document("baikal", extracted, ChunkSettings(), embedder.count_tokens)
    assert [p.id for p in first] == [p.id for p in again]
    edited = ExtractedText(
        extracted.text.replace("nerpa", "Pusa sibirica"), extracted.title, extracted.headings
    )
    changed = chunk_document("baikal", edited, ChunkSettings(), embedder.count_tokens)
    assert first[0].id == changed[0].id and first[1].id != changed[1].id
    assert passage_id("a", "same") != passage_id("b", "same") != passage_id("a", "same", 1)


def test_one_paragraph_per_line_text_splits_by_line(embedder: Embedder, tmp_path: Path) -> None:
    line = "This paragraph sits on a single long line, as in the seed text of the article, and keeps going. "
    path = tmp_path / "lines.txt"
    path.write_text((line * 2 + "\n") * 3)
    passages = check_passages("lines", extract(path), embedder, ChunkSettings(min_tokens=0))
    assert len(passages) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=120),
            st.sampled_from(
                ["\n", "\n\n", "# Heading\n", "## Sub\n", "- item\n", ". ", "U.S. ", "“Quote.” "]
            ),
        ),
        max_size=25,
    )
)
def test_offsets_hold_for_arbitrary_markdown(embedder: Embedder, parts: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.md"
        path.write_text("".join(parts), encoding="utf-8")
        try:
            extracted = extract(path)
        except Exception as exc:  # only the documented refusal is allowed
            assert type(exc).__name__ == "CorpusFileError"
            return
        check_passages("random", extracted, embedder, ChunkSettings(max_tokens=40, min_tokens=5))


def test_budget_must_fit_the_model() -> None:
    with pytest.raises(ValueError):
        ChunkSettings(max_tokens=4)
