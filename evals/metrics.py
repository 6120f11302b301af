"""Answer-quality metrics: retrieval, citations, support, answers and abstention.

A retrieved or cited passage is relevant when it contains one of the item's evidence quotes,
compared after folding case, whitespace, quotes and dashes. Nothing here trusts the answerer's
own marks: a citation is precise when what it cites holds the gold evidence or the reference
answer (never on an item with nothing to cite), and a sentence is supported when the judge the
runner ran (`judge_support`, from `assistant.verify.support`) scores it at or above
`SUPPORT_THRESHOLD`.
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

from assistant import SUPPORT_THRESHOLD, normalize_for_match
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
    "short_em",
    "short_f1",
    "contains_answer",
    "correct_refusal",
    "over_refusal",
)
LOWER_IS_BETTER = {
    "over_refusal",
    "latency_p50_ms",
    "latency_p95_ms",
    "answer_words",
    "answer_words_median",
}


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
    # The system's short answer ({text, passage_id, start, end}) and whether it gives one at
    # all: a system without short answers is not scored on them, one that gives none scores 0.
    short_answer: dict[str, Any] | None = None
    short_capable: bool = False
    strength: float | None = None  # the answer's calibrated strength (evals/calibration.py)
    scores: dict[str, float | None] = field(default_factory=dict)
    # Per-citation verdicts, computed once: bootstrap intervals resample items a thousand times.
    _precise: list[bool] | None = field(default=None, repr=False, compare=False)

    def precise(self) -> list[bool]:
        """Whether each citation is precise (see `citation_precise`)."""
        if self._precise is None:
            self._precise = [citation_precise(c, self.item) for c in self.citations]
        return self._precise

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "history": list(self.item.history),
            "standalone": self.standalone,
            "tags": list(self.item.tags),
            "split": self.item.split,
            "answerable": self.item.answerable,
            "reference": self.item.answer,
            **({"references": list(self.item.references)} if "answers" in self.item.extra else {}),
            "answer": self.answer,
            "short_answer": self.short_answer,
            "abstained": self.abstained,
            "citations": self.citations,
            "sentences": self.sentences,
            "retrieved": [{k: v for k, v in r.items() if k != "text"} for r in self.retrieved],
            "latency_ms": round(self.latency_ms, 2),
            "strength": self.strength,
            "scores": self.scores,
        }


def contains_evidence(text: str, evidence: Sequence[str]) -> bool:
    norm = normalize_for_match(text)
    return any(normalize_for_match(e) in norm for e in evidence)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’–—")


def _answer_tokens(text: str) -> list[str]:
    text = re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text.lower()).translate(_PUNCT)
    return _ARTICLES.sub(" ", text).split()


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (lower case, no punctuation, no a/an/the, single spaces),
    which also drops citation markers and typographic quotes and dashes."""
    return " ".join(_answer_tokens(text))


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the prediction equals any reference after normalisation."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


def best_f1(prediction: str, references: Sequence[str]) -> float:
    """The best token F1 of the prediction against any reference."""
    return max((token_f1(prediction, r) for r in references), default=0.0)


def contains_answer(text: str, references: Sequence[str]) -> bool:
    """Whether `text` holds any reference answer as whole words, after normalisation."""
    padded = f" {normalize_answer(text)} "
    return any((ref := normalize_answer(r)) and f" {ref} " in padded for r in references)


def citation_precise(citation: dict[str, Any], item: GoldItem) -> bool:
    """A citation is precise when the cited sentence or its passage holds gold evidence, or the
    cited sentence holds the reference answer; on an unanswerable item nothing is."""
    if not item.answerable:
        return False
    quote = citation.get("quote") or ""
    if contains_evidence(quote, item.evidence):
        return True
    if contains_evidence(citation.get("text") or "", item.evidence):
        return True
    return contains_answer(quote, item.references)


def judged_supported(sentence: dict[str, Any]) -> bool:
    """The judge's verdict on one answer sentence (the answerer's own flag is ignored)."""
    return float(sentence.get("judge_support") or 0.0) >= SUPPORT_THRESHOLD


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
        good = result.precise()
        s["citation_precision"] = sum(good) / len(good)
    if sentences and not result.abstained:
        s["support_rate"] = sum(judged_supported(x) for x in sentences) / len(sentences)
    if item.answerable:
        # Kept over ir-measures and ranx: both give the same figures on the gold set (210
        # items, 0 differences), but relevance here is evidence found in the text, not judged
        # ids, so they need a fake qrels and run per item (more code than these six lines),
        # and bring pytrec_eval (C, no wheel for Python 3.14) or numba (~250 MB).
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
        refs = item.references
        if result.short_capable and refs:
            short = None if result.abstained else (result.short_answer or {}).get("text")
            s["short_em"] = exact_match(short, refs) if short else 0.0
            s["short_f1"] = best_f1(short, refs) if short else 0.0
        if "answers" in item.extra:
            s["contains_answer"] = float(
                not result.abstained and contains_answer(result.answer, refs)
            )
    else:
        s["correct_refusal"] = float(result.abstained)
    return s


def _values(results: Sequence[ItemResult], metric: str) -> list[float]:
    return [v for r in results if (v := r.scores.get(metric)) is not None]


def _citation_precision(results: Sequence[ItemResult]) -> float | None:
    """Micro-averaged over citations, not items: every citation counts once."""
    good = total = 0
    for r in results:
        flags = r.precise()
        total += len(flags)
        good += sum(flags)
    return good / total if total else None


def _support_rate(results: Sequence[ItemResult]) -> float | None:
    """Micro-averaged over the sentences of answers given (abstentions have none to judge)."""
    sentences = [s for r in results if not r.abstained for s in r.sentences]
    return sum(judged_supported(s) for s in sentences) / len(sentences) if sentences else None


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
    counts = [len(r.answer.split()) for r in answered]
    out["answer_words"] = round(statistics.fmean(counts), 1) if counts else 0.0
    out["answer_words_median"] = float(statistics.median(counts)) if counts else 0.0
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
    """A 95% bootstrap interval over items (resampled with replacement, fixed seed).

    Not scipy.stats.bootstrap: scipy is not a dependency of ours (only of a dependency), the
    citation and support rates are pooled over the resampled items' citations and sentences
    rather than means of per-item values, and its resampling would move every interval."""
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
