"""The short-answer reader: the shipped file loads, says what it was fitted on, reads the answer
out of a sentence, and opens the assistant's answer with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.reader import DEFAULT_READER, ReaderFileError, best_span, load_reader
from assistant.service import Assistant
from evals.train_reader import Example, _encode, _targets, base_model_path


def test_the_shipped_reader_loads_and_names_its_data() -> None:
    reader = load_reader()
    assert reader is not None, f"{DEFAULT_READER} is missing: run `make train`"
    card = json.loads(DEFAULT_READER.with_suffix(".json").read_text())
    assert "SQuAD 2.0" in card["fitted_on"] and "gold" in card["never_read"]
    pooled = card["cross_validation"]["pooled"]
    # Out of fold, given the right sentence, it beats the typed extraction it replaces.
    assert pooled["exact_match"] > pooled["typed_extraction_exact_match"] + 0.1
    assert DEFAULT_READER.stat().st_size < 30_000_000
    # The int8 file reads most spans as the float model did (the unsure ones may differ).
    assert card["int8"]["int8_same_span_as_float"] >= 0.7


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        (
            "What mainly accelerated Moscow's pivot to Beijing?",
            "The conflict with the collective West, particularly with the European Union (EU), "
            "has been the main factor in accelerating Moscow’s pivot to Beijing.",
            "The conflict with the collective West",
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
    answer = assistant.ask("What mainly accelerated Moscow's pivot to Beijing?")
    assert not answer.abstained and answer.short_answer is not None
    short = answer.short_answer
    assert short.text == "The conflict with the collective West" and short.kind == "phrase"
    assert answer.text.startswith(f"**{short.text}**")
    doc = assistant.snapshot().docs[short.doc_id]
    assert doc.text[short.start : short.end] == short.text


def test_without_the_reader_the_typed_extraction_still_answers(assistant: Assistant) -> None:
    trade = "How large was bilateral trade between Russia and China in 2023?"
    assistant.settings.answer.use_reader = False
    try:
        plain = assistant.ask(trade)
        pivot = assistant.ask("What mainly accelerated Moscow's pivot to Beijing?")
    finally:
        assistant.settings.answer.use_reader = True
    assert plain.short_answer is not None and plain.short_answer.text == "$240 billion"
    assert pivot.short_answer is None


def test_a_damaged_reader_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "answer_reader.onnx"
    bad.write_bytes(b"not a model")
    (tmp_path / "answer_reader-tokenizer.json").write_text("{}")
    with pytest.raises(ReaderFileError, match="unusable") as caught:
        load_reader(bad)
    # An AssistantError: the command line shows the message and what to run, not a traceback.
    from assistant.errors import AssistantError

    assert isinstance(caught.value, AssistantError) and "make train" in str(caught.value)
    assert load_reader(tmp_path / "missing.onnx") is None


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
