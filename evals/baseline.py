"""The peer baseline: LlamaIndex's default recipe on the same corpus and embedding model.

SentenceSplitter(1024, 200) -> VectorStoreIndex on Chroma -> top-k retrieval; with no LLM, the
"answer" is the best chunk, cited whole. Scored by the same metrics as the assistant.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant import Settings, resolve_model_path, scan
from evals.gold import GoldItem
from evals.metrics import ItemResult, score_item
from evals.runner import relevant_counts

CHUNK_SIZE, CHUNK_OVERLAP, TOP_K = 1024, 200, 5


class Baseline:
    """A plain LlamaIndex pipeline, built (or reopened) in its own Chroma folder."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.vector_stores.chroma import ChromaVectorStore

        documents = [d.as_llama_document() for d in scan(settings.corpus_dir).documents]
        digest = hashlib.sha256(
            "\n".join(
                sorted(f"{d.id_}:{hashlib.sha256(d.text.encode()).hexdigest()}" for d in documents)
            ).encode()
            + settings.embed_model.encode()
        ).hexdigest()[:12]
        self.embed_model = HuggingFaceEmbedding(
            model_name=str(resolve_model_path(settings.embed_model)), device="cpu"
        )
        client = chromadb.PersistentClient(
            path=str(folder / f"chroma-{digest}"),
            settings=ChromaSettings(anonymized_telemetry=False),
        )
        collection = client.get_or_create_collection("baseline")
        store = ChromaVectorStore(chroma_collection=collection)
        started = time.perf_counter()
        if collection.count() == 0:
            context = StorageContext.from_defaults(vector_store=store)
            self.index = VectorStoreIndex.from_documents(
                documents,
                storage_context=context,
                embed_model=self.embed_model,
                transformations=[
                    SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
                ],
            )
        else:
            self.index = VectorStoreIndex.from_vector_store(store, embed_model=self.embed_model)
        self.build_seconds = time.perf_counter() - started
        got = collection.get(include=["documents"])
        self.chunk_texts: list[str] = [t or "" for t in got["documents"] or []]

    def retrieve(self, question: str, k: int) -> list[Any]:
        return self.index.as_retriever(similarity_top_k=k).retrieve(question)


def run_baseline(
    baseline: Baseline, items: Sequence[GoldItem], progress: Callable[[int], None] | None = None
) -> list[ItemResult]:
    """Each item through the baseline: follow-ups are asked with their history joined in front,
    the usual way to give a stateless retriever the conversation."""
    totals = relevant_counts(baseline.chunk_texts, items)
    results = []
    for item in items:
        question = " ".join([*item.history, item.question]) if item.history else item.question
        started = time.perf_counter()
        nodes = baseline.retrieve(question, max(10, TOP_K))
        latency = (time.perf_counter() - started) * 1000
        retrieved = [
            {
                "passage_id": n.node.node_id,
                "score": round(float(n.score or 0), 6),
                "text": n.node.get_content(),
            }
            for n in nodes
        ]
        top = retrieved[0] if retrieved else None
        answer = f"{' '.join(top['text'].split())} [1]" if top else ""
        citations = (
            [
                {
                    "n": 1,
                    "passage_id": top["passage_id"],
                    "quote": top["text"],
                    "supported": True,
                    "text": top["text"],
                }
            ]
            if top
            else []
        )
        # The reply is the cited chunk itself, so the judge's support is 1.0 by construction.
        sentences = (
            [
                {
                    "text": top["text"],
                    "citations": [1],
                    "support": 1.0,
                    "supported": True,
                    "judge_support": 1.0,
                }
            ]
            if top
            else []
        )
        result = ItemResult(item, answer, not top, citations, sentences, retrieved, latency)
        result.scores = score_item(result, totals[item.id])
        results.append(result)
        if progress:
            progress(1)
    return results
