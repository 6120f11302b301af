from hypothesis import given
from hypothesis import strategies as st

from assistant.text import normalize_for_match, numbers, split_sentences, terms, truncate


def texts(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_splits_on_sentence_ends() -> None:
    assert texts("Russia sells gas. China buys it! Does it pay? Yes.") == [
        "Russia sells gas.",
        "China buys it!",
        "Does it pay?",
        "Yes.",
    ]


def test_keeps_abbreviations_and_initials_inside_sentences() -> None:
    text = "A weakened Russia ensures that the U.S. is tied down in Europe. Dr. Li met J. Smith in Jan. 2024 at the U.N. Then they left."
    assert texts(text) == [
        "A weakened Russia ensures that the U.S. is tied down in Europe.",
        "Dr. Li met J. Smith in Jan. 2024 at the U.N. Then they left.",
    ]


def test_a_possessive_can_end_a_sentence() -> None:
    """The "s" of "Russia's." is not an initial: two sentences, as the article has them."""
    assert texts(
        "It is about 5 per cent of Russia's. The 2021 census found more. J. Smith left."
    ) == [
        "It is about 5 per cent of Russia's.",
        "The 2021 census found more.",
        "J. Smith left.",
    ]


def test_a_day_written_as_an_ordinal_stays_inside_its_sentence() -> None:
    """German writes "am 13. August"; a year before a month still ends a sentence."""
    assert texts(
        "Die Mauer wurde am 13. August 1961 errichtet. Am 9. November 1989 fiel sie. "
        "Trade grew in 2019. November was slower. She counted to 10. March came early."
    ) == [
        "Die Mauer wurde am 13. August 1961 errichtet.",
        "Am 9. November 1989 fiel sie.",
        "Trade grew in 2019.",
        "November was slower.",
        "She counted to 10.",
        "March came early.",
    ]


def test_sentences_of_scripts_without_case_are_split() -> None:
    """Chinese ends sentences with 。！？ and no space; a caseless letter after ". " can
    start one (Arabic, Chinese), where a lower-case Latin letter cannot."""
    assert texts("长城很长。它在中国！真的吗？Yes. 是的. e.g. this.") == [
        "长城很长。",
        "它在中国！",
        "真的吗？",
        "Yes.",
        "是的. e.g. this.",
    ]
    assert texts("مرحبا بكم. كيف حالك") == ["مرحبا بكم.", "كيف حالك"]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert texts("They call them “unequal Treaties.” Moscow disagrees.") == [
        "They call them “unequal Treaties.”",
        "Moscow disagrees.",
    ]


def test_decimal_numbers_and_lowercase_continuations_do_not_split() -> None:
    assert texts("Trade grew 26.3 per cent. in 2023 it rose again.") == [
        "Trade grew 26.3 per cent. in 2023 it rose again."
    ]


def test_offsets_shift_and_trim() -> None:
    spans = split_sentences("  One two.  Three four.  ", offset=10)
    assert spans == [(12, 20), (22, 33)]


@given(st.text(max_size=300))
def test_sentence_spans_are_ordered_trimmed_and_inside_the_text(text: str) -> None:
    spans = split_sentences(text)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        last = e


def test_normalize_for_match_folds_quotes_dashes_case_and_space() -> None:
    assert normalize_for_match("“No  Limits” – partnership’s") == normalize_for_match(
        '"no limits"-partnership\'s'
    )


def test_terms_stem_and_drop_stopwords() -> None:
    assert terms("The treaties were signed by Russia's envoys") == [
        "treati",
        "sign",
        "russia",
        "envoy",
    ]


def test_numbers_ignore_thousands_separators() -> None:
    assert numbers("$240 billion in 2023, about 1,642 metres") == {"240", "2023", "1642"}


def test_truncate_cuts_at_a_word() -> None:
    assert truncate("one two three four", 12) == "one two…"
    assert truncate("short", 12) == "short"
