"""One encoder for questions and passages: the sentence-transformers model exported once to an
ONNX file (with torch, through `torch.onnx.export`), then run with ONNX Runtime and the model's
own `tokenizers` tokenizer, pooled and normalised as its sentence-transformers modules say.

The export takes a few seconds and is kept in the user's cache (`Settings.encoder_dir`), so
later processes load the file without importing torch: a question is embedded in a few
milliseconds and passages several times faster than through sentence-transformers. Where ONNX
Runtime's transformer optimiser knows the architecture (BERT-like models), its fused graph is
used when it gives the same vectors as the plain export.

By default the weights are then quantized to int8 (ONNX Runtime's dynamic quantization, per
channel), which embeds about twice as fast on a CPU. The quantized file is kept only when its
vectors point the same way as the float ones (cosine >= 0.98 on sample sentences); retrieval
quality with it was measured on the gold set's dev split (BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# ONNX Runtime's optimiser handles these encoder architectures as "bert".
_OPTIMISABLE = {"bert", "roberta", "xlm-roberta", "distilbert", "camembert", "electra"}
_POOLING_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_mean_tokens": "mean",
}
EXPORT_VERSION = 1  # bump when the exported file's shape changes
PRECISIONS = ("int8", "fp32")
# Sentences the quantized encoder must embed like the float one before it is kept.
_CHECK_TEXTS = (
    "Bilateral trade reached a record in 2023, most of it settled in national currencies.",
    "The pipeline began deliveries in December 2019.",
    "Who signed the joint statement?",
    "a",
    "Quarterly figures, 1998-2024: exports, imports and the balance, in billions of dollars.",
)
_MIN_COSINE = 0.98


class EncoderUnavailable(RuntimeError):
    """The model cannot be run by this encoder; sentence-transformers must embed."""


@dataclass(frozen=True)
class ModelLayout:
    """What a sentence-transformers folder says about turning token states into a vector."""

    transformer: Path  # the folder of the transformer module
    pooling: str  # "mean", "cls", "max", "mean_sqrt_len" or "lasttoken"
    max_len: int


def read_layout(path: Path) -> ModelLayout:
    """The transformer and pooling of a sentence-transformers model folder."""
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderUnavailable(f"no readable modules.json in {path}") from exc
    types = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if types[:2] != ["Transformer", "Pooling"] or any(t != "Normalize" for t in types[2:]):
        raise EncoderUnavailable(f"modules {types} are not Transformer, Pooling[, Normalize]")
    transformer = path / str(modules[0].get("path") or "")
    pooling_cfg = json.loads((path / str(modules[1]["path"]) / "config.json").read_text())
    chosen = [mode for key, mode in _POOLING_MODES.items() if pooling_cfg.get(key)]
    if len(chosen) != 1:
        raise EncoderUnavailable(f"pooling {chosen or 'none'} is not a single mode")
    max_len = 512
    for folder in (transformer, path):
        cfg = folder / "sentence_bert_config.json"
        if cfg.exists():
            max_len = int(json.loads(cfg.read_text()).get("max_seq_length") or max_len)
            break
    return ModelLayout(transformer, chosen[0], max_len)


def export_name(path: Path, precision: str = "fp32") -> str:
    """The exported file's name: the model folder and its weights' sizes and dates, so an
    edited model is exported again, and the precision of its weights."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{path.resolve()}".encode())
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            st = f.stat()
            digest.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    suffix = "" if precision == "fp32" else f"-{precision}"
    return f"{path.name}-{digest.hexdigest()[:16]}{suffix}.onnx"


def export(layout: ModelLayout, target: Path) -> Path:
    """Write the transformer as an ONNX file at `target` (atomically); returns `target`."""
    with warnings.catch_warnings():
        # The exporter's notes on tracing are about models with control flow; the vectors
        # are checked (here for the fused graph, in the tests against sentence-transformers).
        warnings.simplefilter("ignore")
        return _export(layout, target)


def _export(layout: ModelLayout, target: Path) -> Path:
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(str(layout.transformer), local_files_only=True)
    try:  # the plain attention graph is the one ONNX Runtime knows how to fuse
        model = AutoModel.from_pretrained(
            str(layout.transformer), local_files_only=True, attn_implementation="eager"
        )
    except (ValueError, TypeError):
        model = AutoModel.from_pretrained(str(layout.transformer), local_files_only=True)
    model.eval()
    names = ["input_ids", "attention_mask"]
    if getattr(config, "type_vocab_size", 0):
        names.append("token_type_ids")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        plain = Path(tmp) / "plain.onnx"
        export_graph(model, names, {"hidden": lambda out: out.last_hidden_state}, plain)
        best = optimised(plain, config, names) or plain
        os.replace(best, target)
    return target


def export_graph(model: Any, names: list[str], outputs: dict[str, Any], target: Path) -> None:
    """Write a transformers `model` as an ONNX graph (opset 17, TorchScript exporter) taking
    the token tensors `names` and giving `outputs` (name: function of the model's output),
    with batch and sequence length left free."""
    import torch

    pick = list(outputs.values())

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.model(**dict(zip(names, inputs, strict=True)))
            return tuple(f(out) for f in pick)

    sample = tuple(torch.ones((2, 8), dtype=torch.long) for _ in names)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Graph(),
            sample,
            str(target),
            input_names=names,
            output_names=list(outputs),
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, *outputs]},
            opset_version=17,
            dynamo=False,
        )


def optimised(plain: Path, config: Any, names: list[str]) -> Path | None:
    """ONNX Runtime's fused graph of a BERT-like export, when it gives the same states."""
    if config.model_type not in _OPTIMISABLE:
        return None
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(
            str(plain),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=1,
        )
        out = plain.with_name("fused.onnx")
        fused.save_model_to_file(str(out))
    except Exception:
        return None
    rng = np.random.default_rng(7)
    ids = rng.integers(5, min(1000, int(config.vocab_size)), size=(2, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    feed = {n: feed[n] for n in names}
    a = session(plain).run(None, feed)[0]
    b = session(out).run(None, feed)[0]
    keep = mask.reshape(mask.shape + (1,) * (a.ndim - 2)).astype(bool)  # states or logits
    return out if np.allclose(np.where(keep, a, 0), np.where(keep, b, 0), atol=1e-4) else None


def session(model: Path | bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # Idle worker threads sleep rather than spin: the server's other threads need the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class OnnxEncoder:
    """Unit vectors from the exported model: tokenize, run, pool as the model says, and
    normalise (always, as sentence-transformers is asked to)."""

    runtime = "onnx"

    def __init__(self, model: Path | bytes, tokenizer_file: Path, layout: ModelLayout) -> None:
        from tokenizers import Tokenizer

        self.session = session(model)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.layout = layout
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(layout.max_len)
        self.tokenizer.no_padding()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text.

        Each text runs alone, unpadded: on a CPU that is faster than padded batches (measured
        about 0.6 of the time on the corpus's paragraphs), and an int8 model's activations are
        quantized over the whole input, so alone is also the only way a text's vector does not
        depend on the texts beside it."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([self._encode_one(t) for t in texts])

    def _encode_one(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(text, add_special_tokens=True)
        ids = np.array([encoding.ids], dtype=np.int64)
        mask = np.array([encoding.attention_mask], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        (hidden,) = self.session.run(None, feed)
        vecs = pool(np.asarray(hidden, dtype=np.float32), mask, self.layout.pooling)
        # Unit length whatever the model says: the index compares vectors by dot product.
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Token states (batch, tokens, dim) to one vector per text, as sentence-transformers
    pools them."""
    m = mask[..., None].astype(np.float32)
    if mode == "cls":
        return hidden[:, 0].copy()
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    if mode == "lasttoken":
        last = mask.sum(axis=1) - 1
        return hidden[np.arange(len(hidden)), last].copy()
    summed = (hidden * m).sum(axis=1)
    counts = np.maximum(m.sum(axis=1), 1e-9)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)


_export_lock = threading.Lock()


def quantize(source: Path, target: Path, tokenizer: Path, layout: ModelLayout) -> Path | None:
    """An int8 copy of an exported model at `target` (atomically), or None when its vectors
    stray from the float model's (then nothing is written)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / "int8.onnx"
        try:
            quantize_dynamic(
                str(source),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # The fused graph's attention nodes carry no inferred types; they are float.
                extra_options={"DefaultTensorType": 1},
            )
        except Exception:
            return None
        exact = OnnxEncoder(source, tokenizer, layout).encode(_CHECK_TEXTS)
        approx = OnnxEncoder(out, tokenizer, layout).encode(_CHECK_TEXTS)
        if float((exact * approx).sum(axis=1).min()) < _MIN_COSINE:
            return None
        os.replace(out, target)
    return target


def _build(
    model_path: Path, layout: ModelLayout, tokenizer: Path, folder: Path, precision: str
) -> Path:
    """The exported file for `precision` in `folder`, exporting (and quantizing) as needed;
    the float file when quantization does not hold up."""
    plain = folder / export_name(model_path)
    if not plain.exists():
        export(layout, plain)
    if precision == "fp32":
        return plain
    target = folder / export_name(model_path, precision)
    return quantize(plain, target, tokenizer, layout) or plain


def load(model_path: Path, cache_dir: Path, precision: str = "int8") -> OnnxEncoder:
    """The encoder for a model folder, exporting it into `cache_dir` first if need be;
    EncoderUnavailable when the model cannot be run this way."""
    if precision not in PRECISIONS:
        raise EncoderUnavailable(f"precision {precision!r} is not one of {PRECISIONS}")
    layout = read_layout(model_path)
    tokenizer = layout.transformer / "tokenizer.json"
    if not tokenizer.exists():
        tokenizer = model_path / "tokenizer.json"
    if not tokenizer.exists():
        raise EncoderUnavailable(f"no tokenizer.json in {model_path}")
    target = cache_dir / export_name(model_path, precision)
    with _export_lock:
        if target.exists():
            return OnnxEncoder(target, tokenizer, layout)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            writable = os.access(target.parent, os.W_OK)
        except OSError:
            writable = False
        try:
            if writable:
                return OnnxEncoder(
                    _build(model_path, layout, tokenizer, cache_dir, precision), tokenizer, layout
                )
            # Nowhere to keep it (a read-only home, another user's cache): this process
            # exports into a private folder, loads it and leaves nothing behind.
            with tempfile.TemporaryDirectory(prefix="assistant-encoder-") as tmp:
                built = _build(model_path, layout, tokenizer, Path(tmp), precision)
                model = built.read_bytes()
            return OnnxEncoder(model, tokenizer, layout)
        except EncoderUnavailable:
            raise
        except Exception as exc:
            raise EncoderUnavailable(f"the ONNX export failed: {exc}") from exc
