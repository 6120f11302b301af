import pytest

from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.service import Assistant


def test_hybrid_results_come_from_both_retrievers(assistant: Assistant) -> None:
    found = assistant.retrieve("Leonid Iashov Far East", k=5)
    top = found[0]
    assert "Leonid Iashov" in top.passage.text
    assert top.dense_rank is not None and top.bm25_rank is not None
    assert top.sentence_rank is not None and top.fused_score is not None
    assert top.title and top.kind in ("article", "source")
    assert any(f.kind == "article" and "Leonid Iashov" in f.passage.text for f in found[:2])
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)


def test_results_are_unique(assistant: Assistant) -> None:
    found = assistant.retrieve("China Russia trade", k=20)
    assert len({f.passage.id for f in found}) == len(found) == 20


def test_exact_words_rescue_what_embeddings_miss(assistant: Assistant) -> None:
    found = assistant.retrieve("HSK", k=3)
    assert all("HSK" in f.passage.text for f in found)
    # At least one of them the embeddings did not find at all: BM25 brought it in.
    assert any(f.dense_rank is None and f.bm25_rank is not None for f in found)


def test_exact_search_in_memory_agrees_with_chroma(assistant: Assistant) -> None:
    """A small collection is searched exactly in memory; Chroma's HNSW index gives the same
    neighbours (above the limit every search goes to Chroma)."""
    from assistant.config import RetrievalSettings

    hnsw = Assistant(
        Settings(
            corpus_dir=assistant.settings.corpus_dir,
            index_dir=assistant.settings.index_dir,
            retrieval=RetrievalSettings(exact_search_limit=0),
        ),
        assistant.embedder,
    )
    exact_snap, hnsw_snap = assistant.snapshot(), hnsw.snapshot()
    for question in ("Power of Siberia gas pipeline", "Confucius Institutes in Russia"):
        vector = assistant.embed_query(question)
        exact, approx = exact_snap.dense_search(vector, 10), hnsw_snap.dense_search(vector, 10)
        assert [pid for pid, _ in exact[:5]] == [pid for pid, _ in approx[:5]]
        assert [s for _, s in exact] == sorted((s for _, s in exact), reverse=True)
        for (_, a), (_, b) in zip(exact, approx, strict=True):
            assert abs(a - b) < 1e-4  # the same cosine similarities
        sentences = exact_snap.sentence_search(vector, 20)
        assert sentences[:5] == [
            (pid, i, pytest.approx(sim, abs=1e-4))
            for pid, i, sim in hnsw_snap.sentence_search(vector, 20)[:5]
        ]
        assert hnsw.ask(question).text == assistant.ask(question).text
    assert set(exact_snap.cache.tables) == {"passages", "sentences"}
    assert not hnsw_snap.cache.tables
    table = exact_snap.cache.tables["passages"]
    assert table.matrix.shape == (len(exact_snap.passages), 384)
    assert table.nearest(vector, 0) == []


def test_warm_up_loads_what_the_first_question_needs(
    small_assistant: Assistant, small_settings: Settings
) -> None:
    small_assistant.index()
    fresh = Assistant(small_settings, Embedder("all-MiniLM-L6-v2"))
    assert fresh.embedder._onnx is None
    fresh.warm_up()
    assert fresh.embedder._onnx is not None and fresh.embedder.active_runtime == "onnx"
    assert set(fresh.snapshot().cache.tables) == {"passages", "sentences"}
    assert "lexical" in vars(fresh.retriever())  # BM25 built
