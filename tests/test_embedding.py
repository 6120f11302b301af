import numpy as np
import pytest

from assistant.embedding import Embedder, NumpyEncoder, resolve_model_path
from assistant.errors import AssistantError

TEXTS = [
    "How large was bilateral trade between Russia and China in 2023?",
    "x",
    "Power of Siberia 2 " * 120,  # longer than the model's 256 word-pieces: truncated alike
    "Ünïcödé, 中文 and — dashes",
    "",
]


def test_the_default_model_comes_from_its_package() -> None:
    path = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert (path / "model.safetensors").exists()
    assert resolve_model_path("all-MiniLM-L6-v2") == path


def test_unknown_model_is_a_clear_error_not_a_download() -> None:
    with pytest.raises(AssistantError, match="not a local folder"):
        resolve_model_path("someone/model-that-is-not-here")


def test_numpy_runtime_gives_the_sentence_transformers_vectors(embedder: Embedder) -> None:
    reference = embedder.embed(TEXTS)
    assert reference.shape == (len(TEXTS), 384)
    encoder = embedder.numpy_encoder()
    assert encoder is not None
    fast = np.vstack([embedder.embed_query(t) for t in TEXTS])
    batch = encoder.encode(TEXTS)
    assert np.allclose((fast * reference).sum(1), 1.0, atol=1e-4)
    assert np.allclose((batch * reference).sum(1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_models_the_numpy_runtime_cannot_run_fall_back(tmp_path) -> None:
    assert not NumpyEncoder.supports(tmp_path)


def test_token_counts_skip_special_tokens(embedder: Embedder) -> None:
    assert embedder.count_tokens(["hello world", ""]) == [2, 0]
    assert embedder.max_seq_length == 256
