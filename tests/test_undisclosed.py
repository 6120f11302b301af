"""An abstention that quotes the source saying the detail asked for is not known or not public:
the rule in assistant/undisclosed.py, and the answer over the default corpus."""

from __future__ import annotations

import pytest

from assistant import NOT_GIVEN, Assistant, Scope
from assistant.answer import NO_ANSWER
from assistant.cli.terminal import answer_text
from assistant.undisclosed import says_unknown
from ui.markup import answer_html

PASSAGE = (
    "Gazprom and CNPC signed a 30-year contract for gas supplies through the pipeline in "
    "Shanghai on 21 May 2014. The deal was widely reported to be worth about 400 billion US "
    "dollars over its lifetime; the price formula was not published. The agreement came two "
    "months after Russia's annexation of Crimea."
)
SENTENCE = (
    "The deal was widely reported to be worth about 400 billion US dollars over its lifetime; "
    "the price formula was not published."
)
PRICE = "What is the price formula of the Power of Siberia gas?"


@pytest.mark.parametrize(
    ("question", "sentence", "says"),
    [
        (PRICE, SENTENCE, True),
        ("What price does China pay for the gas?", SENTENCE, True),
        # The clause is about the price; these ask about what the rest of the passage holds.
        ("How much is the deal worth?", SENTENCE, False),
        ("When was the contract signed?", SENTENCE, False),
        ("Who signed the pipeline contract?", SENTENCE, False),
        # Other ways of saying it is not known, and the subject after "undisclosed".
        (
            "How will the second pipeline be financed?",
            "The price and the financing were not made public, and the statements gave few "
            "details.",
            True,
        ),
        (
            "What statements were made?",
            "The price and the financing were not made public, and the statements gave few "
            "details.",
            False,
        ),
        ("What was the fee?", "The company paid an undisclosed fee to the state.", True),
        ("What caused the fire?", "The cause of the fire remains unknown.", True),
        ("Who attended?", "The terms have never been disclosed.", False),
        # "pipeline" is the passage's topic, not what the clause says is unknown.
        ("When did the pipeline open?", "The pipeline's cost was not disclosed.", False),
        # Not a statement that something is unknown.
        ("What was the price?", "The price was published in March.", False),
    ],
)
def test_a_sentence_says_the_asked_detail_is_not_known(
    question: str, sentence: str, says: bool
) -> None:
    passage = PASSAGE if sentence == SENTENCE else f"The pipeline began in 2019. {sentence}"
    assert says_unknown(question, sentence, passage) is says


def test_the_sources_saying_a_detail_was_not_published_is_said_and_cited(
    assistant: Assistant,
) -> None:
    answer = assistant.ask(PRICE)
    assert answer.abstained, "the price formula is not given: the answer does not claim it"
    assert answer.text.startswith(NOT_GIVEN) and answer.text != NO_ANSWER
    assert len(answer.citations) == 1 and answer.short_answer is None
    cite = answer.citations[0]
    assert cite.doc_id == "power-of-siberia"
    assert "the price formula was not published" in cite.quote
    doc = assistant.document(cite.doc_id)
    assert doc.text[cite.start : cite.end] == cite.quote
    # Shown as such on the terminal and in the web app.
    assert answer_text(answer).startswith(NOT_GIVEN)
    html = answer_html(answer, 0)
    assert "do not give this" in html and 'class="cite"' in html and "was not published" in html
    # Inside a scope that holds it, the quote stands; the scope's own message is not used.
    scoped = assistant.ask(PRICE, scope=Scope(docs=frozenset({"power-of-siberia"})))
    assert scoped.text.startswith(NOT_GIVEN)


def test_a_question_the_sources_answer_is_answered_as_before(assistant: Assistant) -> None:
    answer = assistant.ask("When did Power of Siberia start deliveries?")
    assert not answer.abstained
    assert "2 December 2019" in answer.text
