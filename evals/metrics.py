"""Answer-quality metrics: retrieval, citations, support, answers and abstention.

A retrieved or cited passage is relevant when it contains one of the item's evidence quotes,
compared after folding case, whitespace, quotes and dashes.
"""

from __future__ import annotations

import math
import random
import re
import statistics
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.text import normalize_for_match
from evals.gold import GoldItem

METRICS = (
    "hit_at_1",
    "hit_at_5",
    "mrr",
    "ndcg_at_10",
    "citation_recall",
    "citation_precision",
    "support_rate",
    "answer_f1",
    "correct_refusal",
    "over_refusal",
)
LOWER_IS_BETTER = {"over_refusal", "latency_p50_ms", "latency_p95_ms", "answer_words"}


@dataclass
class ItemResult:
    """What one system did on one gold item, and the item-level scores."""

    item: GoldItem
    answer: str
    abstained: bool
    citations: list[dict[str, Any]]  # each with passage_id, text (the passage), quote
    sentences: list[dict[str, Any]]  # each with text, supported
    retrieved: list[dict[str, Any]]  # each with passage_id, text, score
    latency_ms: float
    standalone: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "history": list(self.item.history),
            "standalone": self.standalone,
            "tags": list(self.item.tags),
            "answerable": self.item.answerable,
            "reference": self.item.answer,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": self.citations,
            "sentences": self.sentences,
            "retrieved": [{k: v for k, v in r.items() if k != "text"} for r in self.retrieved],
            "latency_ms": round(self.latency_ms, 2),
            "scores": self.scores,
        }


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    norm = normalize_for_match(text)
    return any(normalize_for_match(e) in norm for e in evidence)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’–—")


def _answer_tokens(text: str) -> list[str]:
    text = re.sub(r"\[\d+\]", " ", text.lower()).translate(_PUNCT)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 between an answer and the reference answer."""
    pred, ref = _answer_tokens(prediction), _answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_item(result: ItemResult, relevant_total: int) -> dict[str, float | None]:
    """Per-item metric values; None where a metric does not apply to this item."""
    item = result.item
    s: dict[str, float | None] = dict.fromkeys(METRICS)
    cites = result.citations
    sentences = result.sentences
    if cites:
        good = [
            contains_evidence(c["text"], item.evidence) or c.get("supported", False) for c in cites
        ]
        s["citation_precision"] = sum(good) / len(good)
    if sentences and not result.abstained:
        s["support_rate"] = sum(bool(x.get("supported")) for x in sentences) / len(sentences)
    if item.answerable:
        rels = [contains_evidence(r["text"], item.evidence) for r in result.retrieved]
        s["hit_at_1"] = float(bool(rels[:1]) and rels[0])
        s["hit_at_5"] = float(any(rels[:5]))
        first = next((i for i, r in enumerate(rels) if r), None)
        s["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
        dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(rels[:10]) if r)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(10, max(1, relevant_total))))
        s["ndcg_at_10"] = dcg / ideal
        cited_text = " ".join(c["text"] for c in cites)
        s["citation_recall"] = float(
            not result.abstained
            and bool(cites)
            and all(contains_evidence(cited_text, [e]) for e in item.evidence)
        )
        s["answer_f1"] = 0.0 if result.abstained else token_f1(result.answer, item.answer or "")
        s["over_refusal"] = float(result.abstained)
    else:
        s["correct_refusal"] = float(result.abstained)
    return s


def _values(results: Sequence[ItemResult], metric: str) -> list[float]:
    return [v for r in results if (v := r.scores.get(metric)) is not None]


def _citation_precision(results: Sequence[ItemResult]) -> float | None:
    """Micro-averaged over citations, not items: every citation counts once."""
    good = total = 0
    for r in results:
        for c in r.citations:
            total += 1
            good += bool(contains_evidence(c["text"], r.item.evidence) or c.get("supported", False))
    return good / total if total else None


def _support_rate(results: Sequence[ItemResult]) -> float | None:
    sentences = [s for r in results if not r.abstained for s in r.sentences]
    return sum(bool(s.get("supported")) for s in sentences) / len(sentences) if sentences else None


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(results: Sequence[ItemResult]) -> dict[str, Any]:
    """The summary: every metric over all items, plus latencies, sizes and answer length."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        if metric == "citation_precision":
            value = _citation_precision(results)
        elif metric == "support_rate":
            value = _support_rate(results)
        else:
            vals = _values(results, metric)
            value = statistics.fmean(vals) if vals else None
        out[metric] = None if value is None else round(value, 4)
    latencies = [r.latency_ms for r in results]
    out["latency_p50_ms"] = round(_percentile(latencies, 0.5), 2)
    out["latency_p95_ms"] = round(_percentile(latencies, 0.95), 2)
    out["n_items"] = len(results)
    answered = [r for r in results if not r.abstained and r.answer]
    out["answer_words"] = (
        round(statistics.fmean(len(r.answer.split()) for r in answered), 1) if answered else 0.0
    )
    return out


MetricFn = Callable[[Sequence[ItemResult]], float | None]


def metric_fn(metric: str) -> MetricFn:
    if metric == "citation_precision":
        return _citation_precision
    if metric == "support_rate":
        return _support_rate

    def mean(results: Sequence[ItemResult]) -> float | None:
        vals = _values(results, metric)
        return statistics.fmean(vals) if vals else None

    return mean


def bootstrap_ci(
    results: Sequence[ItemResult], metric: str, rounds: int = 1000, seed: int = 7
) -> tuple[float, float] | None:
    """A 95% bootstrap interval over items (resampled with replacement, fixed seed)."""
    fn = metric_fn(metric)
    if fn(results) is None:
        return None
    rng = random.Random(seed)
    n = len(results)
    samples = []
    for _ in range(rounds):
        sample = [results[rng.randrange(n)] for _ in range(n)]
        value = fn(sample)
        if value is not None:
            samples.append(value)
    if not samples:
        return None
    return round(_percentile(samples, 0.025), 4), round(_percentile(samples, 0.975), 4)


def by_tag(results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    """The summary for each item kind (article, source, two-passage, ...)."""
    groups: dict[str, list[ItemResult]] = {}
    for r in results:
        groups.setdefault(r.item.kind, []).append(r)
    return {tag: summarize(rs) for tag, rs in sorted(groups.items())}
