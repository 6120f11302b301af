"""Runs gold items through the assistant's public API and scores them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from assistant import Answer, Assistant, ChatSession, normalize_for_match, strip_markers
from evals.gold import GoldItem
from evals.metrics import ItemResult, score_item

Progress = Callable[[int], None]


def _citations(answer: Answer, texts: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for c in answer.citations:
        supported = any(c.n in s.citations and s.supported for s in answer.sentences)
        out.append(
            {
                "n": c.n,
                "passage_id": c.passage_id,
                "doc_id": c.doc_id,
                "kind": c.kind,
                "quote": c.quote,
                "supported": supported,
                "text": texts.get(c.passage_id, c.quote),
            }
        )
    return out


def judge_support(assistant: Assistant, answer: Answer) -> list[float]:
    """For each answer sentence, the best `verify.support` score of the passages it cites,
    computed here rather than taken from the answerer; 0.0 for a sentence that cites nothing."""
    by_n = {c.n: c.passage_id for c in answer.citations}
    scores = []
    for sentence in answer.sentences:
        claim = strip_markers(sentence.text)
        cited = [by_n[n] for n in sentence.citations if n in by_n]
        judged = assistant.supports(claim, cited) if claim and cited else []
        scores.append(round(max(judged, default=0.0), 4))
    return scores


def short_answer(answer: Answer) -> tuple[dict[str, Any] | None, bool]:
    """The answer's short answer as a dict, and whether the answerer gives short answers at all."""
    capable = hasattr(answer, "short_answer")
    short = getattr(answer, "short_answer", None)
    if short is None:
        return None, capable
    to_dict = getattr(short, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict()), capable
    return {k: getattr(short, k, None) for k in ("text", "passage_id", "start", "end")}, capable


def relevant_counts(passage_texts: Sequence[str], items: Sequence[GoldItem]) -> dict[str, int]:
    """How many passages of a system contain any evidence quote of each item (for nDCG)."""
    normalized = [normalize_for_match(t) for t in passage_texts]
    out = {}
    for item in items:
        quotes = [normalize_for_match(e) for e in item.evidence]
        out[item.id] = sum(any(q in t for q in quotes) for t in normalized)
    return out


def run_assistant(
    assistant: Assistant, items: Sequence[GoldItem], progress: Progress | None = None
) -> list[ItemResult]:
    """Each item through a fresh chat session (history first), as a user would ask it."""
    texts = {p.id: p.text for p in assistant.passages()}
    totals = relevant_counts(list(texts.values()), items)
    results = []
    for item in items:
        session = ChatSession(assistant)
        for earlier in item.history:
            session.ask(earlier)
        started = time.perf_counter()
        answer = session.ask(item.question)
        latency = (time.perf_counter() - started) * 1000
        standalone = answer.standalone_question or item.question
        retrieved = [
            {
                "passage_id": sp.passage.id,
                "doc_id": sp.passage.doc_id,
                "score": round(sp.score, 6),
                "text": sp.passage.text,
            }
            for sp in assistant.retrieve(standalone, k=10)
        ]
        judged = judge_support(assistant, answer)
        short, capable = short_answer(answer)
        result = ItemResult(
            item=item,
            answer=answer.text,
            abstained=answer.abstained,
            citations=_citations(answer, texts),
            sentences=[
                {
                    "text": s.text,
                    "citations": s.citations,
                    "support": s.support,
                    "supported": s.supported,
                    "judge_support": j,
                }
                for s, j in zip(answer.sentences, judged, strict=True)
            ],
            retrieved=retrieved,
            latency_ms=latency,
            standalone=standalone if standalone != item.question else None,
            short_answer=short,
            short_capable=capable,
            strength=answer.strength,
        )
        result.scores = score_item(result, totals[item.id])
        results.append(result)
        if progress:
            progress(1)
    return results
