"""The short-answer reader: the shipped file loads, says what it was fitted on, reads the answer
out of a sentence, and opens the assistant's answer with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answer import READ_MIN_PROBABILITY
from assistant.reader import DEFAULT_READER, ReaderFileError, best_span, load_reader
from assistant.service import Assistant
from evals.train_reader import Example, _encode, _targets, base_model_path
from tests.conftest import CORPUS

MET = "Who met in Beijing on 4 February 2022?"


def test_the_shipped_reader_loads_and_names_its_data() -> None:
    reader = load_reader()
    assert reader is not None, f"{DEFAULT_READER} is missing: run `make train`"
    card = json.loads(DEFAULT_READER.with_suffix(".json").read_text())
    assert "SQuAD 2.0" in card["fitted_on"] and "gold" in card["never_read"]
    pooled = card["cross_validation"]["pooled"]
    # Out of fold, given the right sentence, it beats the typed extraction it replaces.
    assert pooled["exact_match"] > pooled["typed_extraction_exact_match"] + 0.1
    assert DEFAULT_READER.stat().st_size < 30_000_000
    # Its answer-or-not score tells the sentence that answers from a near-miss of the same
    # paragraph (out of fold, SQuAD 2.0 style).
    assert "near-misses taught as no answer" in card["fitted_on"]
    assert pooled["answerable_auc"] >= 0.7
    # The int8 file reads most spans as the float model did (the unsure ones may differ).
    assert card["int8"]["int8_same_span_as_float"] >= 0.7


def test_the_short_answer_floor_is_the_one_the_readers_card_supports() -> None:
    """READ_MIN_PROBABILITY is the lowest floor at which the spans shown were exactly right at
    least seven times in ten out of fold: a refitted reader needs the floor chosen again."""
    pooled = json.loads(DEFAULT_READER.with_suffix(".json").read_text())["cross_validation"][
        "pooled"
    ]
    prefix = "exact_match_at_probability_"
    floors = {float(k.removeprefix(prefix)): v for k, v in pooled.items() if k.startswith(prefix)}
    assert READ_MIN_PROBABILITY in floors
    chosen = min(f for f, exact in floors.items() if exact >= 0.7)
    assert chosen == READ_MIN_PROBABILITY


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        (
            "Who owns Yamal LNG?",
            "Yamal LNG, on the Yamal Peninsula with its port at Sabetta, is owned by Novatek "
            "(50.1 per cent), France's TotalEnergies (20 per cent) and others.",
            "Novatek",
        ),
        (
            "Who met in the Chinese capital?",
            "On 4 February 2022 Vladimir Putin and Xi Jinping met in the Chinese capital.",
            "Vladimir Putin and Xi Jinping",
        ),
    ],
)
def test_the_reader_finds_the_answer_inside_the_sentence(
    question: str, sentence: str, expected: str
) -> None:
    reader = load_reader()
    assert reader is not None
    read = reader.read(question, sentence)
    assert read is not None and 0.0 < read.probability <= 1.0
    assert expected in sentence[read.start : read.end]
    assert read.end - read.start < len(sentence) / 2


def test_the_answer_opens_with_the_read_span(assistant: Assistant) -> None:
    answer = assistant.ask(MET)
    assert not answer.abstained and answer.short_answer is not None
    short = answer.short_answer
    assert short.text == "Vladimir Putin and Xi Jinping" and short.kind == "name"
    assert answer.text.startswith(f"**{short.text}**")
    doc = assistant.snapshot().docs[short.doc_id]
    assert doc.text[short.start : short.end] == short.text


def test_without_the_reader_the_typed_extraction_still_answers(assistant: Assistant) -> None:
    trade = "How large was bilateral trade between Russia and China in 2023?"
    assistant.settings.answer.use_reader = False
    try:
        plain = assistant.ask(trade)
        met = assistant.ask(MET)
        owner = assistant.ask("Who owns Yamal LNG?")
    finally:
        assistant.settings.answer.use_reader = True
    assert plain.short_answer is not None and plain.short_answer.text == "$240 billion"
    # The pattern for a name takes the first one; the reader reads who met, and who owns.
    assert met.short_answer is not None and met.short_answer.text == "Vladimir Putin"
    assert owner.short_answer is not None and owner.short_answer.text == "Yamal Peninsula"
    read = assistant.ask("Who owns Yamal LNG?").short_answer
    assert read is not None and read.text == "Novatek"


def test_a_damaged_reader_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "answer_reader.onnx"
    bad.write_bytes(b"not a model")
    (tmp_path / "answer_reader-tokenizer.json").write_text("{}")
    with pytest.raises(ReaderFileError, match="unusable") as caught:
        load_reader(bad)
    # An AssistantError: the command line shows the message and what to run, not a traceback.
    from assistant.errors import AssistantError

    assert isinstance(caught.value, AssistantError) and "make train" in str(caught.value)
    # A reader the settings name but that is not there is an error too, saying what to set.
    with pytest.raises(ReaderFileError, match="ASSISTANT_ANSWER__READER_PATH"):
        load_reader(tmp_path / "missing.onnx")


def test_the_settings_choose_the_reader_file(
    default_index: Path, embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.config import Settings

    settings = Settings(corpus_dir=CORPUS, index_dir=default_index)
    assert settings.answer.reader_path is None  # the shipped reader
    monkeypatch.setenv("ASSISTANT_ANSWER__READER_PATH", str(tmp_path / "gone.onnx"))
    settings = Settings(corpus_dir=CORPUS, index_dir=default_index)
    assert settings.answer.reader_path == tmp_path / "gone.onnx"
    with pytest.raises(ReaderFileError, match="No short-answer reader"):
        Assistant(settings, embedder).ask("What mainly accelerated Moscow's pivot to Beijing?")


def test_the_best_span_is_ordered_short_and_inside_the_sentence() -> None:
    start = np.array([9.0, 0.0, 5.0, 0.0, 0.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 0.0, 5.0, 0.0])
    (first, last), prob = best_span(start, end, [2, 3, 4, 5])  # token 0 is the question's
    assert (first, last) == (2, 4) and 0.5 < prob <= 1.0
    start = np.array([0.0, 0.0, 0.0, 5.0])
    end = np.array([0.0, 5.0, 0.0, 0.0])
    (first, last), _ = best_span(start, end, [1, 2, 3])  # the end never comes before the start
    assert first <= last
    assert best_span(start, end, []) is None


def test_training_targets_cover_the_answer_tokens() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    sentence = "Bilateral trade surpassed $240 billion in 2023, a record."
    at = sentence.index("$240 billion")
    example = Example("How large was trade?", sentence, at, at + 12, ("$240 billion",), 0)
    enc = _encode(tokenizer, [example])
    rows, firsts, lasts = _targets(enc, [example])
    assert rows == [0]
    offsets = enc["offset_mapping"][0].tolist()
    assert sentence[offsets[firsts[0]][0] : offsets[lasts[0]][1]] == "$240 billion"


def test_a_near_miss_is_taught_as_no_answer_on_the_cls_token() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    answered = "Bilateral trade surpassed $240 billion in 2023, a record."
    miss = Example("How large was trade?", "The pipeline opened in 2019.", -1, -1, (), 0)
    at = answered.index("$240 billion")
    hit = Example("How large was trade?", answered, at, at + 12, ("$240 billion",), 0)
    enc = _encode(tokenizer, [miss, hit])
    rows, firsts, lasts = _targets(enc, [miss, hit])
    assert rows == [0, 1] and (firsts[0], lasts[0]) == (0, 0)
    assert enc.sequence_ids(0)[0] is None  # token 0 is [CLS], outside question and sentence
    assert firsts[1] > 0 and lasts[1] >= firsts[1]


def test_near_misses_hold_none_of_their_answers() -> None:
    from evals.squad import DEFAULT_SQUAD
    from evals.train_reader import near_misses

    misses = near_misses(DEFAULT_SQUAD)
    assert len(misses) > 3000
    for e in misses:
        assert not e.answerable
        assert not any(a and a in e.sentence for a in e.answers), (e.question, e.sentence)


def test_the_no_answer_probability_is_the_cls_tokens_share() -> None:
    from assistant.reader import no_answer

    start = np.array([4.0, 0.0, 0.0, 0.0])
    end = np.array([4.0, 0.0, 0.0, 0.0])
    p = np.exp(4.0) / (np.exp(4.0) + 2)  # [CLS] against the sentence's tokens 2 and 3
    assert no_answer(start, end, [2, 3]) == pytest.approx(p * p)
    assert no_answer(np.zeros(4), np.zeros(4), [1, 2, 3]) == pytest.approx(1 / 16)


def test_each_squad_article_gets_the_reader_that_never_read_it(tmp_path: Path) -> None:
    from assistant.errors import AssistantError
    from evals.train_reader import out_of_fold_readers

    with pytest.raises(AssistantError, match="No out-of-fold readers") as caught:
        out_of_fold_readers(tmp_path)
    assert "evals.train_reader" in str(caught.value)
    for n, held in enumerate(([0, 1], [2, 3])):
        (tmp_path / f"fold{n}.json").write_text(json.dumps({"held_out_articles": held}))
        (tmp_path / f"fold{n}.onnx").write_bytes(b"")
    found = out_of_fold_readers(tmp_path)
    assert found == {
        0: tmp_path / "fold0.onnx",
        1: tmp_path / "fold0.onnx",
        2: tmp_path / "fold1.onnx",
        3: tmp_path / "fold1.onnx",
    }


PARAPHRASE = (
    "In which city did the very first of Beijing's overseas language-and-culture centres open "
    "its doors?"
)


def test_the_reader_ranks_a_paraphrase_above_sentences_that_share_its_words(
    assistant: Assistant,
) -> None:
    # The question shares almost no words with "The first Confucius Institute opened in Seoul in
    # November 2004."; embeddings and shared terms put other sentences first, the reader (which
    # reads question and sentence together) lifts it to the top.
    found = assistant.search(PARAPHRASE)
    assert "Seoul" in found.candidates[0].text
    assert "Seoul" in found.passages[0].passage.text
    plain_settings = assistant.settings.model_copy(deep=True)
    plain_settings.rerank.reader = 0.0
    plain = Assistant(plain_settings, assistant.embedder).search(PARAPHRASE)
    assert "Seoul" not in plain.candidates[0].text
    assert all(c.read == 0.0 for c in plain.candidates)


def test_the_reader_scores_only_the_best_sentences_again(assistant: Assistant) -> None:
    reader = load_reader()
    assert reader is not None
    weight, depth = assistant.settings.rerank.reader, assistant.settings.rerank.reader_depth
    found = assistant.search(MET)
    reread = [c for c in found.candidates if c.read > 0]
    assert 0 < len(reread) <= depth
    for c in reread:
        assert c.read == pytest.approx(weight * reader.answerable(MET, c.text))
    scores = [c.score for c in found.candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_pair_already_read_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = load_reader()
    assert reader is not None
    runs = []
    real = reader.session.run
    monkeypatch.setattr(reader.session, "run", lambda *a: runs.append(1) or real(*a))
    question, sentence = "Who read this twice?", "The clerk read the register twice in 1990."
    first = reader.read(question, sentence)
    again = reader.read(question, sentence)
    assert first == again and len(runs) == 1
    reader.read(question, sentence + " Then he left.")
    assert len(runs) == 2


def test_squad_questions_are_asked_with_the_reader_that_never_read_their_article(
    tmp_path: Path, embedder
) -> None:
    from assistant.config import Settings
    from evals.gold import GoldItem
    from evals.train_reader import by_fold_reader

    for n, held in enumerate(([0], [1])):
        (tmp_path / f"fold{n}.json").write_text(json.dumps({"held_out_articles": held}))
        (tmp_path / f"fold{n}.onnx").write_bytes(b"")
    items = [GoldItem(f"q{a}", "Who?", "x", ("x",), True, extra={"article": a}) for a in (0, 1, 1)]
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index")
    groups = by_fold_reader(settings, embedder, items, tmp_path)
    assert [(a.settings.answer.reader_path, [i.id for i in g]) for a, g in groups] == [
        (tmp_path / "fold0.onnx", ["q0"]),
        (tmp_path / "fold1.onnx", ["q1", "q1"]),
    ]
    assert settings.answer.reader_path is None  # the settings given are left as they were


def test_a_question_longer_than_the_model_reads_is_cut_not_an_error() -> None:
    reader = load_reader()
    assert reader is not None
    sentence = "The treaty was signed in 2001 by Putin."
    for question in ("Who signed the treaty? " * 60, "0" * 300 + "/㐀0:0:0:" * 40):
        read = reader.read(question, sentence)
        assert read is not None and 0 <= read.start < read.end <= len(sentence)
