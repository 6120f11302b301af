from assistant.api import Assistant


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
    assert any("HSK" in f.passage.text for f in found)
    assert any(f.bm25_rank == 1 and "HSK" in f.passage.text for f in found)
