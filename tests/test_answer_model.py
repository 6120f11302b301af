"""The learned answer model: the shipped file loads, says what it was fitted on, and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answer_model import DEFAULT_MODEL, FEATURES, AnswerModel, load_model
from assistant.service import Assistant

TRADE = "How large was bilateral trade between Russia and China in 2023?"


def test_the_shipped_model_loads_and_names_its_data() -> None:
    model = load_model()
    assert model is not None, f"{DEFAULT_MODEL} is missing: run `make train`"
    assert model.weights.shape == (len(FEATURES),) and np.all(np.isfinite(model.weights))
    assert 0.0 < model.threshold < 1.0
    fitted = " ".join(model.info["fitted_on"])
    assert "SQuAD 2.0 training articles" in fitted and "dev split" in fitted
    assert "test split" not in fitted and model.info["never_read"] == "the gold set's test split"
    assert model.info["cross_validation"]["pooled"]["answerable"] > 0


def test_the_model_answers_a_stated_fact_and_declines_a_near_miss(assistant: Assistant) -> None:
    model = load_model()
    assert model is not None
    trade = assistant.ask(TRADE)
    assert not trade.abstained and trade.confidence is not None
    assert trade.confidence >= model.threshold
    assert trade.short_answer is not None and trade.short_answer.text == "$240 billion"
    doc = assistant.snapshot().docs[trade.short_answer.doc_id]
    assert doc.text[trade.short_answer.start : trade.short_answer.end] == "$240 billion"
    budget = assistant.ask("What was the budget of the Vostok 2018 exercise?")
    assert budget.abstained, budget.text


def test_model_files_for_other_features_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    data = json.loads(DEFAULT_MODEL.read_text())
    data["features"] = ["something", "else"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="make train"):
        load_model(path)
    assert load_model(tmp_path / "missing.json") is None


def test_probabilities_follow_the_weights() -> None:
    n = len(FEATURES)
    model = AnswerModel(np.eye(n)[0], 0.0, np.zeros(n), np.ones(n), 0.5, {})
    rows = np.zeros((2, n))
    rows[0, 0], rows[1, 0] = 2.0, -2.0
    high, low = model.probabilities(rows)
    assert high > 0.8 and low < 0.2
