"""Which sentence answers the question, and whether any does: a small logistic model over
question–sentence features.

The model scores each of the best candidate sentences with the probability that it states the
answer. The answer quotes the most probable one; when even that one is below the model's
threshold, the assistant says the sources do not answer. A near-miss (a sentence on the same
topic that lacks the figure, the date or the name asked for, or that is about another entity
than the one the question names) scores low because the features see exactly that.

The weights and the threshold are data, not code: `assistant/models/answer_model.json`, written
by `make train` (evals/train_answer_model.py) from SQuAD 2.0 training articles and the gold
set's dev split only. The file records what it was fitted on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError
from assistant.rerank import Candidate
from assistant.shortanswer import asked_type, extract
from assistant.text import STOPWORDS, stem, terms, words

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "answer_model.json"

FEATURES = (
    "score",
    "similarity",
    "sentence_terms",
    "passage_terms",
    "gap_to_best",
    "rank",
    "asks_type",
    "has_asked_fact",
    "short_answer",
    "missing_rare",
    "missing_share",
    "sentence_missing_rare",
    "length",
    "read",
)


def _content_terms(question: str) -> list[str]:
    return [stem(w) for w in words(question) if w not in STOPWORDS and len(w) > 1]


def features(
    question: str,
    candidates: Sequence[Candidate],
    idf: Callable[[str], float],
    context_terms: Callable[[Candidate], set[str]],
) -> np.ndarray:
    """One row of FEATURES per candidate (candidates come best first by the reranker)."""
    q_terms = list(dict.fromkeys(_content_terms(question)))
    weights = {t: idf(t) for t in q_terms}
    top_idf = max(weights.values(), default=1.0) or 1.0
    total = sum(weights.values()) or 1.0
    kind = asked_type(question)
    best = candidates[0].score if candidates else 0.0
    rows = []
    for rank, cand in enumerate(candidates):
        context = context_terms(cand)
        sentence = set(terms(cand.text))
        missing = [t for t in q_terms if t not in context]
        # One extraction serves both columns: the asked fact is there exactly when a short
        # answer of the asked type is found (no type asked: neither).
        fact = kind is not None and extract(question, cand.text) is not None
        rows.append(
            [
                cand.score,
                cand.similarity,
                cand.sentence_terms,
                cand.passage_terms,
                best - cand.score,
                math.log1p(rank),
                float(kind is not None),
                float(fact),
                float(fact),
                max((weights[t] for t in missing), default=0.0) / top_idf,
                sum(weights[t] for t in missing) / total,
                max((weights[t] for t in q_terms if t not in sentence), default=0.0) / top_idf,
                math.log1p(len(cand.text)) / 6.0,
                cand.read,
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(-1, len(FEATURES))


@dataclass(frozen=True)
class AnswerModel:
    """Logistic weights over FEATURES (standardised by `mean` and `scale`) and the threshold
    below which the assistant abstains."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    info: dict[str, Any]

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        z = ((rows - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the weights and the threshold: which model a calibration fits
        (computed once: every answer checks it)."""
        data = self.to_json()
        keys = ("features", "weights", "bias", "mean", "scale", "threshold")
        text = json.dumps({k: data[k] for k in keys}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "mean": [round(float(m), 6) for m in self.mean],
            "scale": [round(float(s), 6) for s in self.scale],
            "threshold": round(self.threshold, 4),
            **self.info,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnswerModel:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError("the model file was fitted on other features; run `make train`")
        info = {
            k: v
            for k, v in data.items()
            if k not in ("features", "weights", "bias", "mean", "scale", "threshold")
        }
        return cls(
            weights=np.array(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            mean=np.array(data["mean"], dtype=np.float64),
            scale=np.array(data["scale"], dtype=np.float64),
            threshold=float(data["threshold"]),
            info=info,
        )


class ModelFileError(AssistantError, ValueError):
    """The answer model's file cannot be used."""


@lru_cache(maxsize=4)
def load_model(path: Path = DEFAULT_MODEL) -> AnswerModel | None:
    """The shipped model, or None when the file is missing (the answerer then uses its score
    threshold alone). A damaged file is an error that says how to make a new one."""
    try:
        return AnswerModel.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(
            f"The answer model {path} is unusable: {exc}.",
            "Run `make train` to fit it again, or set ASSISTANT_ANSWER__USE_MODEL=false.",
        ) from None
