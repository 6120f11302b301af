from assistant.service import Assistant
from assistant.types import AnswerSentence
from assistant.verify import (
    SUPPORT_THRESHOLD,
    check_sentences,
    markers,
    strip_markers,
    support,
)


def trade_passage(assistant: Assistant):
    return next(p for p in assistant.snapshot().passages if "$240 billion" in p.text)


def score(assistant: Assistant, claim: str) -> float:
    p = trade_passage(assistant)
    vecs = assistant.snapshot().chroma.sentence_vectors([p])[p.id]
    return support(claim, p, assistant.idf, assistant.embed_query(claim), vecs).score


def test_verbatim_sentence_is_fully_supported(assistant: Assistant) -> None:
    p = trade_passage(assistant)
    claim = next(s for s in p.sentence_texts() if "$240 billion" in s)
    result = support(claim, p, assistant.idf)
    assert result.score == 1.0 and "$240 billion" in p.sentence_texts()[result.sentence]


def test_paraphrase_is_supported_and_unrelated_claims_are_not(assistant: Assistant) -> None:
    assert (
        score(assistant, "Trade between the two countries passed 240 billion dollars in 2023.")
        >= 0.5
    )
    assert score(assistant, "China supplies microchips and cars to Russia.") >= 0.5
    assert score(assistant, "The Arctic ice sheet is melting faster every decade.") < 0.3


def test_a_wrong_figure_is_not_supported(assistant: Assistant) -> None:
    assert score(assistant, "Bilateral trade surpassed $310 billion in 2023.") <= 0.25


def test_markers_are_parsed_and_stripped() -> None:
    assert markers("It grew [1] and grew [2, 3][1].") == [1, 2, 3]
    assert strip_markers("It grew [1] and grew [2, 3].") == "It grew and grew."


def test_check_sentences_drops_markers_to_passages_not_retrieved(assistant: Assistant) -> None:
    p = trade_passage(assistant)
    sentences = [
        AnswerSentence("Bilateral trade surged past $240 billion in 2023.", [1, 7]),
        AnswerSentence("Penguins live in Antarctica.", [1]),
        AnswerSentence("Nothing cited here.", [9]),
    ]
    vecs = assistant.snapshot().chroma.sentence_vectors([p])
    claims = [assistant.embed_query(s.text) for s in sentences]
    checked = check_sentences(sentences, {1: p}, assistant.idf, claims, vecs)
    assert [s.citations for s in checked] == [[1], [1], []]
    assert [s.supported for s in checked] == [True, False, False]
    assert checked[0].support is not None and checked[0].support >= 0.5
    # An unsupported sentence keeps its best score, which is the support() score of its claim
    # against the cited passage, and below the threshold; a sentence citing nothing scores 0.
    penguins = round(score(assistant, "Penguins live in Antarctica."), 4)
    assert checked[1].support == penguins and 0.0 <= penguins < SUPPORT_THRESHOLD
    assert checked[2].support == 0.0
