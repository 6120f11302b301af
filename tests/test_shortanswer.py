"""The short answer inside a cited sentence: what a question asks for, found where it stands."""

from __future__ import annotations

import pytest

from assistant.answer import fits_question
from assistant.rerank import quantities
from assistant.shortanswer import asked_type, asked_unit, extract, figure_fits, has_asked_fact


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        (
            "How large was bilateral trade between Russia and China in 2023?",
            "From 2022 bilateral trade between the neighbors has surged dramatically surpassing "
            "$240 billion in 2023-a record figure.",
            "$240 billion",
        ),
        (
            "What do Moscow and Beijing call their partnership?",
            "They have repeatedly emphasized their “No Limits” partnership.",
            "No Limits",
        ),
        (
            "What is another name for the Trans-Caspian International Route?",
            "It runs along the Trans-Caspian International Route-also known as the Middle "
            "Corridor-through Kazakhstan.",
            "Middle Corridor",
        ),
        (
            "What is that section called?",
            "The Mongolian section has been called Soyuz Vostok since 2022.",
            "Soyuz Vostok",
        ),
        (
            "When was it declared?",
            "On 4 February 2022 Russia and China issued a joint statement.",
            "4 February 2022",
        ),
        (
            "How much of Russia's imports come from China?",
            "China currently accounts for more than 30% of Russia’s imports.",
            "more than 30%",
        ),
        ("How deep is Lake Baikal?", "Lake Baikal is 1,642 metres deep.", "1,642 metres"),
        (
            "How many troops took part?",
            "Some 300,000 troops and 36,000 vehicles took part in 2018.",
            "Some 300,000 troops",
        ),
        (
            "Who signed the treaty for China?",
            "The treaty was signed by Vladimir Putin and Jiang Zemin in Moscow.",
            "Vladimir Putin",
        ),
        ("How much did the line cost?", "The line cost $55 billion to build.", "$55 billion"),
        (
            "How much did the restoration cost?",
            "A restoration costing 4.2 million kroner was finished in 1998.",
            "4.2 million kroner",
        ),
        ("What was the price?", "Tickets sold for 300 francs in 1900.", "300 francs"),
        ("How much was the fee?", "The fee was ₹2,000 per year.", "₹2,000"),
    ],
)
def test_the_short_answer_is_the_asked_fact(question: str, sentence: str, expected: str) -> None:
    span = extract(question, sentence)
    assert span is not None and sentence[span.start : span.end] == expected


def test_a_sentence_without_the_asked_fact_has_no_short_answer() -> None:
    budget = "What was the budget of the Vostok 2018 exercise?"
    assert asked_type(budget) == "money"
    personnel = "Vostok 2018 involved about 300,000 personnel."
    assert extract(budget, personnel) is None
    assert has_asked_fact(budget, personnel) is False
    assert has_asked_fact("Why did Russia turn east?", personnel) is None  # nothing typed asked
    # A currency's name that is also a word after a number is no money: "11 won the vote".
    assert extract(budget, "A party of 11 won the vote in 2018.") is None


def test_the_question_s_own_figure_is_not_its_answer() -> None:
    question = "What happened to trade in 2023?"
    assert asked_type(question) is None
    year = "When did trade pass $240 billion?"
    span = extract(year, "Trade passed $240 billion in 2023.")
    assert (
        span is not None and "Trade passed $240 billion in 2023."[span.start : span.end] == "2023"
    )


@pytest.mark.parametrize(
    "sentence",
    [
        "After the attack near Moscow on 22 March 2024, Russia tightened its rules.",
        "A ceasefire signed on 9–10 November 2020 ended the war.",
        "The tanker docked on March 28, 2025 with a cargo from Arctic LNG 2.",
        "With the G7, it set a cap on Su-35 exports.",
    ],
)
def test_days_of_dates_and_numbers_in_names_are_no_count(sentence: str) -> None:
    question = "How many people died in the attack?"
    assert extract(question, sentence) is None
    assert quantities(sentence) == set()


def test_counts_beside_dates_and_names_are_still_counts() -> None:
    sentence = "On 11 September 2018, The 25 brigades of Vostok 2018 had about 300,000 troops."
    assert quantities(sentence) == {"25", "300000"}
    span = extract("How many troops took part in Vostok 2018?", sentence)
    assert span is not None and sentence[span.start : span.end] == "about 300,000 troops"


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many tonnes of freight did the corridor carry?", "mass"),
        ("How many Russian peacekeepers were deployed?", "people"),
        ("How many square kilometres does the district cover?", "area"),
        ("How many members does the SCO have?", None),
        ("How much did the pipeline cost?", None),
    ],
)
def test_the_unit_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asked_unit(question) == kind


def test_a_figure_of_another_kind_of_unit_is_not_the_figure_asked_for() -> None:
    sentence = (
        "The war lasted 44 days and about 100,000 people fled, at a cost of 10 billion euros."
    )
    tonnes = "How many tonnes of freight were moved?"
    assert not figure_fits(tonnes, sentence) and extract(tonnes, sentence) is None
    people = "How many refugees fled?"
    span = extract(people, sentence)
    assert span is not None and sentence[span.start : span.end] == "about 100,000 people"
    days = "How many days did the war last?"
    span = extract(days, sentence)
    assert span is not None and sentence[span.start : span.end] == "44 days"
    assert figure_fits("How many soldiers were killed?", "It lasted 44 days; 3,000 were killed.")
    assert not figure_fits("How many soldiers were killed?", "The war went on for 44 days.")
    assert not figure_fits("How many refugees were there?", "It lasted 44 days and more.")
    assert figure_fits("How many refugees crossed?", "They crossed at 1,000 a day.")
    assert figure_fits("How many cubic metres of gas?", "It carries 22.5 bcm a year.")
    assert asked_unit("How many people per square kilometre?") == "people"
    assert not fits_question("How many peacekeepers were deployed?", "The war lasted 44 days.")


@pytest.mark.parametrize(
    ("sentence", "count"),
    [
        ("Nearly 40 people died.", "40"),
        ("Officials say 30 may have died.", "30"),
        ("On 22nd March 40 people died.", "40"),
        ("On 22 Mar 2024, 40 people died.", "40"),
        ("USD 24 billion was lent.", "24"),
    ],
)
def test_counts_at_a_sentence_s_start_or_after_a_date_are_counts(sentence: str, count: str) -> None:
    assert quantities(sentence) == {count}
    span = extract("How many people died?", sentence)
    assert span is not None and count in sentence[span.start : span.end]


def test_who_is_not_answered_by_a_month_or_a_weekday() -> None:
    assert extract("Who is the ambassador?", "Armenia: in force since January 2020.") is None
    assert extract("Who spoke?", "Talks resumed on Monday.") is None
    sentence = "The treaty was signed in July by Jiang Zemin."
    span = extract("Who signed the treaty?", sentence)
    assert span is not None and sentence[span.start : span.end] == "Jiang Zemin"
    sentence = "It was signed on 28 May 1858 by Yishan."
    span = extract("Who signed it?", sentence)
    assert span is not None and sentence[span.start : span.end] == "Yishan"
    sentence = "In London, Theresa May met him."
    span = extract("Who met him?", sentence)
    assert span is not None and sentence[span.start : span.end] == "Theresa May"
