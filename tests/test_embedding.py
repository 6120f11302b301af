import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.embedding import Embedder, resolve_model_path
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


def reference(embedder: Embedder) -> Embedder:
    return Embedder(embedder.model_name, "sentence-transformers")


def test_the_onnx_encoder_gives_the_sentence_transformers_vectors(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Questions one at a time, and passages in length-sorted batches, both as
    sentence-transformers embeds them (truncation, padding, pooling, normalisation)."""
    expected = reference(embedder).embed(TEXTS)
    assert expected.shape == (len(TEXTS), 384)
    exact = Embedder(embedder.model_name, cache_dir=tmp_path, precision="fp32")
    assert exact.encoder() is not None and exact.active_runtime == "onnx"
    single = np.vstack([exact.embed_query(t) for t in TEXTS])
    batch = exact.embed(TEXTS)
    assert np.allclose(single, expected, atol=1e-5)
    assert np.allclose(batch, expected, atol=1e-5)


def test_the_int8_encoder_points_the_same_way_and_is_the_default(embedder: Embedder) -> None:
    expected = reference(embedder).embed(TEXTS)
    encoder = embedder.encoder()
    assert encoder is not None and embedder.precision == "int8"
    got = embedder.embed(TEXTS)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > 0.97
    assert not np.allclose(got, expected, atol=1e-3)  # quantized, not the float model
    single = np.vstack([embedder.embed_query(t) for t in TEXTS])
    assert np.allclose(single, got, atol=1e-5)


def test_a_quantized_model_that_strays_is_not_kept(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "_MIN_COSINE", 1.01)  # no int8 vector is that close
    strict = Embedder(embedder.model_name, cache_dir=tmp_path)
    expected = reference(embedder).embed(TEXTS[:2])
    assert np.allclose(strict.embed(TEXTS[:2]), expected, atol=1e-5)
    assert [p.name.endswith("-int8.onnx") for p in tmp_path.glob("*.onnx")] == [False]


def test_the_export_is_kept_and_loaded_without_torch(embedder: Embedder, tmp_path: Path) -> None:
    first = Embedder(embedder.model_name, cache_dir=tmp_path)
    first.embed_query("warm")
    files = sorted(tmp_path.glob("*.onnx"), key=lambda p: p.stat().st_size)
    assert len(files) == 2 and files[0].name.endswith("-int8.onnx")  # and the float export
    assert 1_000_000 < files[0].stat().st_size < files[1].stat().st_size / 3
    code = (
        "import sys; from pathlib import Path; from assistant.embedding import Embedder; "
        f"e = Embedder({embedder.model_name!r}, cache_dir=Path({str(tmp_path)!r})); "
        "v = e.embed_query('warm'); print(e.active_runtime, 'torch' in sys.modules, v.shape[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["onnx", "False", "384"]


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_any_pooling_the_model_declares_is_followed(
    embedder: Embedder, tmp_path: Path, mode: str
) -> None:
    """Another sentence-transformers model: the same weights with other pooling and no
    Normalize module give sentence-transformers' vectors through the ONNX path too."""
    model = tmp_path / "model"
    shutil.copytree(embedder.path, model)
    pooling = model / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    for key in list(cfg):
        if key.startswith("pooling_mode_"):
            cfg[key] = key == f"pooling_mode_{mode}_tokens" or key == f"pooling_mode_{mode}_token"
    pooling.write_text(json.dumps(cfg))
    modules = json.loads((model / "modules.json").read_text())
    (model / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize module
    onnx = Embedder(str(model), cache_dir=tmp_path / "cache", precision="fp32")
    st = Embedder(str(model), "sentence-transformers")
    a, b = onnx.embed(TEXTS[:4]), st.embed(TEXTS[:4])
    assert onnx.active_runtime == "onnx"
    assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(a, embedder.embed(TEXTS[:4]), atol=1e-3)  # the pooling counted


def test_a_model_the_export_cannot_run_falls_back_with_a_warning(
    embedder: Embedder, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(embedder.path, model)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2_Dense", "path": "2_Dense", "type": "Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    odd = Embedder(str(model), cache_dir=tmp_path / "cache")
    with pytest.warns(RuntimeWarning, match="sentence-transformers"):
        assert odd.encoder() is None
    assert odd.active_runtime == "sentence-transformers"


def test_token_counts_skip_special_tokens(embedder: Embedder) -> None:
    assert embedder.count_tokens(["hello world", ""]) == [2, 0]
    assert embedder.max_seq_length == 256


def test_with_nowhere_to_keep_the_export_it_is_made_for_the_process_alone(
    embedder: Embedder, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    fresh = Embedder(embedder.model_name, cache_dir=blocker / "encoders")
    assert np.allclose(fresh.embed_query(TEXTS[0]), embedder.embed_query(TEXTS[0]), atol=1e-5)
    assert fresh.active_runtime == "onnx"
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]
