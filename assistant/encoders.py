"""Question encoders: the BERT model of a sentence-transformers folder, run without torch.

Sentence-transformers builds the index; these embed questions, which keeps both cold starts
and warm answers short. Both read the model's own weights and give sentence-transformers'
vectors (tests check that all three agree):

- `OnnxEncoder` writes the model out as an ONNX graph in memory (the weights stay in numpy
  arrays the runtime reads in place) and runs it with ONNX Runtime, which packs the weight
  matrices once and fuses the small operations: about 4 ms a question on two cores.
- `NumpyEncoder` is the same computation in numpy, for machines without ONNX Runtime: about
  twice as slow, as each matrix product re-packs its weights.

`supports()` says whether a model folder qualifies: BERT-type models with mean pooling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class QueryEncoder(Protocol):
    runtime: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def supports(path: Path) -> bool:
    """Whether these runtimes can run the model in this folder."""
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


class BertWeights:
    """A BERT model's configuration and weights, arranged for inference: each linear layer's
    matrix transposed to (inputs, outputs), and query, key and value fused into one."""

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file

        cfg = json.loads((path / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        raw = load_file(str(path / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""
        w = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
        for i in range(self.layers):
            att = f"encoder.layer.{i}.attention.self"
            for part in ("weight", "bias"):
                w[f"encoder.layer.{i}.qkv.{part}"] = np.concatenate(
                    [w.pop(f"{att}.{n}.{part}") for n in ("query", "key", "value")]
                )
        # Matrices (out, in) become (in, out): `x @ m` then reads them row by row.
        self.matrix = {
            k[: -len(".weight")]: np.ascontiguousarray(w.pop(k).T)
            for k in list(w)
            if k.endswith(".weight") and w[k].ndim == 2 and not k.startswith("embeddings.")
        }
        self.vector = w  # embeddings tables, biases and layer-norm parameters
        self.hidden = int(self.vector["embeddings.word_embeddings.weight"].shape[1])


def token_batch(tokenizer: Any, texts: Sequence[str], max_len: int) -> tuple[np.ndarray, ...]:
    """Token ids and attention mask, padded to the longest text; a text longer than the
    model's window keeps its first tokens and its closing [SEP], as sentence-transformers
    truncates."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    rows = [e.ids[: max_len - 1] + ([e.ids[-1]] if len(e.ids) > max_len else []) for e in encodings]
    length = max(len(r) for r in rows)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.float32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1.0
    return ids, mask


# erf(x) ~ x * P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond): the rational
# approximation Eigen and XLA use for float32, within 5e-7 of the exact value.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)
_SQRT_HALF = np.float32(np.sqrt(0.5))


def _polynomial(x2: np.ndarray, coefficients: tuple[np.float32, ...]) -> np.ndarray:
    out = x2 * coefficients[0]
    for c in coefficients[1:-1]:
        out += c
        out *= x2
    out += coefficients[-1]
    return out


def gelu(h: np.ndarray) -> np.ndarray:
    """The exact GELU, h * (1 + erf(h / sqrt 2)) / 2, in float32 and vectorised (scipy's erf
    works one number at a time, several times slower)."""
    x = np.clip(h, -4 / _SQRT_HALF, 4 / _SQRT_HALF)
    x *= _SQRT_HALF
    x2 = x * x
    erf = _polynomial(x2, _ERF_P)
    erf *= x
    erf /= _polynomial(x2, _ERF_Q)
    erf += 1
    erf *= h
    erf *= 0.5
    return erf


class NumpyEncoder:
    """The model run with numpy: no package beyond numpy and safetensors."""

    runtime = "numpy"

    def __init__(self, weights: BertWeights, tokenizer: Any, max_len: int) -> None:
        self.m = weights
        self.tokenizer = tokenizer
        self.max_len = max_len

    def _layer_norm(self, x: np.ndarray, name: str) -> np.ndarray:
        """Layer norm of a 2-D batch of token vectors, in place (`x` is a scratch array)."""
        x -= x.mean(-1, keepdims=True)
        var = np.einsum("ij,ij->i", x, x)
        var /= x.shape[-1]
        var += self.m.eps
        x *= (1.0 / np.sqrt(var))[:, None]
        x *= self.m.vector[f"{name}.weight"]
        x += self.m.vector[f"{name}.bias"]
        return x

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        """A linear layer over a 2-D batch of token vectors."""
        out = x @ self.m.matrix[name]
        out += self.m.vector[f"{name}.bias"]
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ids, mask = token_batch(self.tokenizer, texts, self.max_len)
        m, v = self.m, self.m.vector
        batch, length = ids.shape
        x = (
            v["embeddings.word_embeddings.weight"][ids]
            + v["embeddings.position_embeddings.weight"][:length][None, :, :]
            + v["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(x.reshape(batch * length, m.hidden), "embeddings.LayerNorm")
        head_dim = m.hidden // m.heads
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for i in range(m.layers):
            p = f"encoder.layer.{i}"
            qkv = self._dense(x, f"{p}.qkv").reshape(batch, length, 3, m.heads, head_dim)
            q, k, val = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ val).transpose(0, 2, 1, 3).reshape(batch * length, m.hidden)
            out = self._dense(ctx, f"{p}.attention.output.dense")
            out += x
            x = self._layer_norm(out, f"{p}.attention.output.LayerNorm")
            out = self._dense(gelu(self._dense(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
            out += x
            x = self._layer_norm(out, f"{p}.output.LayerNorm")
        x = x.reshape(batch, length, m.hidden)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


class _Graph:
    """Builds an ONNX graph node by node; large weights stay outside it, in numpy arrays."""

    def __init__(self) -> None:
        import onnx

        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.external: dict[str, np.ndarray] = {}
        self._n = 0

    def const(self, name: str, value: Any) -> str:
        arr = np.asarray(value)
        if arr.size > 64 and arr.dtype == np.float32:
            # Declared in the graph, bound to the array when the session is created.
            tensor = self.onnx.TensorProto(name=name, data_type=self.onnx.TensorProto.FLOAT)
            tensor.dims.extend(arr.shape)
            entry = tensor.external_data.add()
            entry.key, entry.value = "location", "memory"
            tensor.data_location = self.onnx.TensorProto.EXTERNAL
            self.initializers.append(tensor)
            self.external[name] = np.ascontiguousarray(arr, dtype=np.float32)
        else:
            self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def bert_graph(m: BertWeights) -> tuple[bytes, dict[str, np.ndarray]]:
    """The model as a serialised ONNX graph (opset 20), and the arrays its large weights
    are bound to: input_ids (int64) and attention_mask (float32), both [batch, tokens], in;
    unit-length mean-pooled vectors out."""
    g = _Graph()
    onnx, v = g.onnx, m.vector
    head_dim = m.hidden // m.heads

    def ints(name: str, *values: int) -> str:
        return g.const(name, np.array(values, dtype=np.int64))

    def dense(x: str, name: str) -> str:
        return g.op(
            "Add",
            g.op("MatMul", x, g.const(f"{name}.w", m.matrix[name])),
            g.const(f"{name}.b", v[f"{name}.bias"]),
        )

    def layer_norm(x: str, name: str) -> str:
        scale, shift = (
            g.const(f"{name}.g", v[f"{name}.weight"]),
            g.const(f"{name}.b", v[f"{name}.bias"]),
        )
        return g.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=m.eps)

    length = g.op("Slice", g.op("Shape", "input_ids"), ints("one", 1), ints("two", 2))
    positions = g.op(
        "Slice", g.const("pos", v["embeddings.position_embeddings.weight"]), ints("zero", 0), length
    )
    x = g.op("Gather", g.const("words", v["embeddings.word_embeddings.weight"]), "input_ids")
    x = g.op(
        "Add",
        g.op("Add", x, positions),
        g.const("token_type", v["embeddings.token_type_embeddings.weight"][0]),
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    # Padding gets -1e9 before the softmax: [batch, 1, 1, tokens].
    mask_bias = g.op(
        "Mul",
        g.op("Sub", g.const("one_f", np.float32(1)), "attention_mask"),
        g.const("minus", np.float32(-1e9)),
    )
    mask_bias = g.op("Unsqueeze", mask_bias, ints("heads_axes", 1, 2))
    scale = g.const("scale", np.float32(1.0 / np.sqrt(head_dim)))
    split = ints("qkv_shape", 0, 0, 3, m.heads, head_dim)
    merge = ints("ctx_shape", 0, 0, m.hidden)
    for i in range(m.layers):
        p = f"encoder.layer.{i}"
        qkv = g.op("Transpose", g.op("Reshape", dense(x, f"{p}.qkv"), split), perm=[2, 0, 3, 1, 4])
        q, k, val = (
            g.op("Gather", qkv, g.const(f"{p}.part{j}", np.int64(j)), axis=0) for j in range(3)
        )
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), scale)
        probs = g.op("Softmax", g.op("Add", scores, mask_bias), axis=-1)
        ctx = g.op(
            "Reshape", g.op("Transpose", g.op("MatMul", probs, val), perm=[0, 2, 1, 3]), merge
        )
        x = layer_norm(
            g.op("Add", dense(ctx, f"{p}.attention.output.dense"), x),
            f"{p}.attention.output.LayerNorm",
        )
        h = g.op("Gelu", dense(x, f"{p}.intermediate.dense"))
        x = layer_norm(g.op("Add", dense(h, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")
    mask3 = g.op("Unsqueeze", "attention_mask", ints("token_axis", 2))
    summed = g.op("ReduceSum", g.op("Mul", x, mask3), ints("axis1", 1), keepdims=0)
    count = g.op("ReduceSum", "attention_mask", ints("axis1b", 1), keepdims=1)
    pooled = g.op("Div", summed, g.op("Max", count, g.const("tiny", np.float32(1e-9))))
    norm = g.op("ReduceL2", pooled, ints("last", -1), keepdims=1)
    g.nodes.append(
        onnx.helper.make_node(
            "Div", [pooled, g.op("Max", norm, g.const("tinier", np.float32(1e-12)))], ["vectors"]
        )
    )
    graph = onnx.helper.make_graph(
        g.nodes,
        "sentence-encoder",
        [
            onnx.helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, ["b", "t"]),
            onnx.helper.make_tensor_value_info(
                "attention_mask", onnx.TensorProto.FLOAT, ["b", "t"]
            ),
        ],
        [onnx.helper.make_tensor_value_info("vectors", onnx.TensorProto.FLOAT, ["b", m.hidden])],
        initializer=g.initializers,
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 20)])
    return model.SerializeToString(), g.external


class OnnxEncoder:
    """The model run with ONNX Runtime; needs the `onnx` and `onnxruntime` packages (an
    ImportError says they are missing)."""

    runtime = "onnx"

    def __init__(self, weights: BertWeights, tokenizer: Any, max_len: int) -> None:
        import onnxruntime as ort

        model, external = bert_graph(weights)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # Idle worker threads sleep rather than spin: the server's other threads need the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._values = [ort.OrtValue.ortvalue_from_numpy(a) for a in external.values()]
        options.add_external_initializers(list(external), self._values)
        self._arrays = external  # the runtime reads these in place: they live as long as it
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_len = max_len

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ids, mask = token_batch(self.tokenizer, texts, self.max_len)
        (out,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(out, dtype=np.float32)
