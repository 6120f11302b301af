"""Question vectors are kept for repeated questions: the least recently used go first, and a
cache size of 0 keeps none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.config import RetrievalSettings, Settings
from assistant.embedding import Embedder
from assistant.service import Assistant


def counting_assistant(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, keep: int
) -> tuple[Assistant, list[str]]:
    """An assistant keeping `keep` vectors, and the list of texts its real embedder encoded."""
    encoded: list[str] = []
    real = embedder.embed_query

    def counted(text: str) -> np.ndarray:
        encoded.append(text)
        return real(text)

    monkeypatch.setattr(embedder, "embed_query", counted)
    settings = Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        retrieval=RetrievalSettings(query_cache=keep),
    )
    return Assistant(settings, embedder), encoded


def test_the_least_recently_used_vector_goes_first(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assistant, encoded = counting_assistant(tmp_path, embedder, monkeypatch, keep=2)
    first = assistant.embed_query("Where is Lake Baikal?")
    assistant.embed_query("What is the Silk Road?")
    assert assistant.embed_query("Where is Lake Baikal?") is first  # kept, and now the newest
    assistant.embed_query("How is tea grown?")  # evicts the Silk Road, used longest ago
    assistant.embed_query("Where is Lake Baikal?")
    assert encoded == ["Where is Lake Baikal?", "What is the Silk Road?", "How is tea grown?"]
    assistant.embed_query("What is the Silk Road?")
    assert encoded[-1] == "What is the Silk Road?"
    assert np.allclose(first, embedder.embed_query("Where is Lake Baikal?"))


def test_a_cache_of_zero_keeps_nothing(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assistant, encoded = counting_assistant(tmp_path, embedder, monkeypatch, keep=0)
    assistant.embed_query("Where is Lake Baikal?")
    assistant.embed_query("Where is Lake Baikal?")
    assert encoded == ["Where is Lake Baikal?", "Where is Lake Baikal?"]
