"""The JSON shapes of a claim's support and of a passage in context: what `assistant cite
--json` and `assistant show --json` print and what the MCP tools return, written once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.types import PassageContext, SupportResult


def support_view(
    claim: str, results: Sequence[SupportResult], titles: dict[str, str]
) -> dict[str, Any]:
    """The passages that support a claim, best first, with their scores and best sentence."""
    passages = [
        {
            "passage_id": r.passage.id,
            "doc_id": r.passage.doc_id,
            "title": titles.get(r.passage.doc_id, r.passage.doc_id),
            "support": r.score,
            "supports": r.score >= 0.5,
            "sentence": list(r.sentence) if r.sentence else None,
            "quote": r.quote,
            "text": r.passage.text,
        }
        for r in results
    ]
    return {"claim": claim, "passages": passages}


def context_view(found: PassageContext) -> dict[str, Any]:
    """A passage with its page (a PDF's; None otherwise), its document and the text around it."""
    return {
        **found.passage.to_dict(),
        "page": found.document.page(found.passage.start),
        "document": found.document.meta.to_dict(),
        "before": found.before,
        "after": found.after,
    }
