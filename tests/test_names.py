"""The names a question is about, and whether a text mentions them in any of their forms."""

from __future__ import annotations

import pytest

from assistant.names import STATE_NAMES, fold, mentioned, question_entities, unmentioned


def test_names_drop_possessives_and_the_lower_case_parts_of_compounds() -> None:
    assert question_entities("What did Putin's Beijing-based aides sign in 2019?") == [
        "Putin",
        "Beijing",
        "2019",
    ]


def test_a_state_is_mentioned_by_its_capital_or_seat_of_power() -> None:
    assert mentioned("moscow", fold("Russian forces crossed the river."))
    assert mentioned("kremlin", fold("Russia said no."))
    assert mentioned("russia", fold("Talks in Moscow ended."))
    assert mentioned("beijing", fold("The People's Republic of China agreed."))
    assert mentioned("washington", fold("The U.S. said no."))
    assert not mentioned("moscow", fold("Chinese forces crossed the river."))


def test_a_state_is_mentioned_by_its_adjective_and_an_adjective_names_its_state() -> None:
    assert mentioned("beijing", fold("Chinese institutes opened."))
    assert mentioned("china", fold("Chinese institutes opened."))
    assert mentioned("austrian", fold("Vienna said no."))
    assert not mentioned("austrian", fold("Canberra said no."))  # not Australia
    assert mentioned("american", fold("The United States said no."))
    assert not mentioned("beijing", fold("The machine stopped."))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("india", "It indicated that individuals agreed."),
        ("ecuador", "It was quite clear."),  # Quito
        ("santiago", "The children left."),  # Chile
        ("kazan", "Astana hosted it."),  # a city, not "Kazakh"
    ],
)
def test_a_state_s_names_are_not_found_inside_other_words(name: str, text: str) -> None:
    assert not mentioned(name, fold(text))


def test_a_state_named_in_several_words_is_one_name() -> None:
    assert unmentioned("What did the United States say?", "Washington said no.") == []
    assert unmentioned("Did North Korea send troops?", "Pyongyang sent troops.") == []
    assert unmentioned("What did the United States say?", "Paris said no.") == ["united states"]


def test_short_and_word_like_names_do_not_match_inside_words() -> None:
    assert not mentioned("washington", fold("Thus the rest of us agreed."))  # "US"
    assert not mentioned("london", fold("Ukraine signed."))  # "UK"
    assert mentioned("london", fold("The UK signed."))
    assert not mentioned("maldives", fold("A male delegate spoke."))  # "Malé"


def test_a_name_is_not_found_at_the_end_of_another_word() -> None:
    # Any name, not only a state's: its forms start a word ("Russian" holds "Russia").
    assert not mentioned("oman", fold("A woman spoke for the delegation."))
    assert not mentioned("iran", fold("The talks were held in Tirana."))
    assert not mentioned("putin", fold("Rasputin is a legend."))
    assert mentioned("putin", fold("Putin's visit followed."))
    assert mentioned("iran", fold("Iranian oil was sold."))


def test_unmentioned_names_are_those_no_form_of_which_occurs() -> None:
    text = "Russia and China signed the treaty in 2001."
    assert unmentioned("Did Moscow and Beijing sign it with Tokyo in 2001?", text) == ["Tokyo"]


def test_the_state_names_file_is_one_group_per_line_with_no_name_twice() -> None:
    lines = STATE_NAMES.read_text(encoding="utf-8").splitlines()
    # Accented and plain spellings of one name fold alike: count each line's names once.
    names = [n for line in lines for n in {fold(x) for x in line.split("|")}]
    assert len(lines) >= 198 and all(line.count("|") >= 1 for line in lines)
    assert len(names) == len(set(names))


def test_the_common_nouns_of_names_are_not_what_a_text_must_mention() -> None:
    question = "Which air base does Moscow keep in the Kyrgyz Republic?"
    assert question_entities(question) == ["Moscow", "Kyrgyz"]
    assert unmentioned(question, "Russia keeps the Kant air base in Kyrgyzstan.") == []
