from assistant.service import Assistant
from assistant.verify import (
    SUPPORT_THRESHOLD,
    check_claims,
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


def test_check_claims_drops_markers_to_passages_not_retrieved(assistant: Assistant) -> None:
    p = trade_passage(assistant)
    sentences = [
        "Bilateral trade surged past $240 billion in 2023. [1, 7]",
        "Penguins live in Antarctica. [1]",
        "Nothing cited here. [9]",
    ]
    vecs = assistant.snapshot().chroma.sentence_vectors([p])
    claims = [assistant.embed_query(strip_markers(s)) for s in sentences]
    checked = check_claims(sentences, {1: p}, assistant.idf, claims, vecs)
    assert [s.citations for s in checked] == [[1], [1], []]
    assert [s.support >= SUPPORT_THRESHOLD for s in checked] == [True, False, False]
    assert checked[0].text == "Bilateral trade surged past $240 billion in 2023."
    assert not any(s.inferred for s in checked)
    # An unsupported sentence keeps its best score, which is the support() score of its claim
    # against the cited passage, and below the threshold; a sentence citing nothing scores 0.
    penguins = round(score(assistant, "Penguins live in Antarctica."), 4)
    assert checked[1].support == penguins and 0.0 <= penguins < SUPPORT_THRESHOLD
    assert checked[2].support == 0.0


def test_a_claim_without_a_marker_cites_the_passage_that_supports_it(
    assistant: Assistant,
) -> None:
    p = trade_passage(assistant)
    other = next(x for x in assistant.snapshot().passages if "Aigun" in x.text)
    vecs = assistant.snapshot().chroma.sentence_vectors([p, other])
    sentences = [
        "Bilateral trade surged past $240 billion in 2023.",
        "Penguins live in Antarctica.",
    ]
    claims = [assistant.embed_query(s) for s in sentences]
    checked = check_claims(sentences, {1: other, 2: p}, assistant.idf, claims, vecs)
    assert checked[0].citations == [2] and checked[0].inferred
    assert checked[0].support >= SUPPORT_THRESHOLD
    assert checked[1].citations == [] and not checked[1].inferred
