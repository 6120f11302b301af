import numpy as np
import pytest

from assistant.embedding import Embedder, resolve_model_path
from assistant.encoders import gelu, supports
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


@pytest.mark.parametrize("runtime", ["onnx", "numpy"])
def test_query_runtimes_give_the_sentence_transformers_vectors(
    embedder: Embedder, runtime: str
) -> None:
    reference = embedder.embed(TEXTS)
    assert reference.shape == (len(TEXTS), 384)
    encoder = embedder.load_encoder(runtime)
    assert encoder is not None and encoder.runtime == runtime
    single = np.vstack([encoder.encode([t])[0] for t in TEXTS])
    batch = encoder.encode(TEXTS)  # padded to the longest text
    assert np.allclose((single * reference).sum(1), 1.0, atol=1e-4)
    assert np.allclose((batch * reference).sum(1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)


def test_questions_are_embedded_with_onnx_runtime_by_default(embedder: Embedder) -> None:
    fresh = Embedder(embedder.model_name)
    assert fresh.active_runtime == "onnx"
    assert np.allclose(fresh.embed_query(TEXTS[0]) @ embedder.embed([TEXTS[0]])[0], 1.0, atol=1e-4)
    assert Embedder(embedder.model_name, "numpy").active_runtime == "numpy"


def test_gelu_matches_the_exact_erf_form() -> None:
    from scipy.special import erf

    x = np.linspace(-12, 12, 100_001, dtype=np.float32)
    exact = 0.5 * x.astype(np.float64) * (1 + erf(x.astype(np.float64) / np.sqrt(2)))
    assert np.abs(gelu(x.copy()) - exact).max() < 2e-6


def test_models_the_fast_runtimes_cannot_run_fall_back(tmp_path) -> None:
    assert not supports(tmp_path)


def test_token_counts_skip_special_tokens(embedder: Embedder) -> None:
    assert embedder.count_tokens(["hello world", ""]) == [2, 0]
    assert embedder.max_seq_length == 256


def test_onnx_runtime_failing_falls_back_to_numpy_with_a_warning(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.embedding as embedding

    def refuse(*args: object) -> None:
        raise RuntimeError("graph refused")

    monkeypatch.setattr(embedding, "OnnxEncoder", refuse)
    with pytest.warns(RuntimeWarning, match="numpy runtime"):
        encoder = embedder.load_encoder("onnx")
    assert encoder is not None and encoder.runtime == "numpy"
