"""The short answer inside a sentence, read by a small extractive question-answering model: the
question and the sentence go through one transformer together, which gives each word of the
sentence a score for being the answer's first word and one for being its last. As in SQuAD 2.0,
the [CLS] token stands for "no answer here": trained on near-miss sentences as well as on the
sentences that answer (which made its spans better out of fold), the model also says how likely
a sentence is to answer at all (`ReadSpan.answerable`). The search adds that figure, weighted,
to the scores of the best few sentences (rerank.reread, RerankSettings.reader): reading the
question and the sentence together, it finds the sentence that answers a question worded unlike
it, which embeddings and shared words miss. The answer model sees it as a feature too.

The model is the MiniLM of the default embedding model with a span head, fine-tuned by
`make train` (evals/train_reader.py) on the SQuAD 2.0 training articles shipped in
evals/data/squad2, exported to ONNX, quantized to int8 and shipped as
`assistant/models/answer_reader.onnx`, with the tokenizer it was trained with beside it. The
gold question set is never read to fit it. Without the file, short answers come from the
question's wording alone (shortanswer.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from assistant.encoder import session
from assistant.errors import AssistantError

DEFAULT_READER = Path(__file__).resolve().parent / "models" / "answer_reader.onnx"
MAX_TOKENS = 160  # question and sentence together; a longer sentence loses its tail
MAX_SPAN = 20  # tokens in a short answer


def tokenizer_path(model: Path) -> Path:
    """The tokenizer file that belongs to a reader file."""
    return model.with_name(model.stem + "-tokenizer.json")


@dataclass(frozen=True)
class ReadSpan:
    """The most likely answer inside a sentence: character offsets, the span's probability
    given that the sentence answers, and the probability that it answers at all (the model's
    no-answer score, on its [CLS] token, against the sentence's words)."""

    start: int
    end: int
    probability: float
    answerable: float = 1.0


class SpanReader:
    """Runs the exported span model on (question, sentence) pairs."""

    def __init__(self, model: Path | bytes, tokenizer: Path) -> None:
        from tokenizers import Tokenizer

        self.session: Any = session(model)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        # The longer of question and sentence loses tokens first: the sentence, but for a
        # question so long that it would leave the sentence no room.
        self.tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
        self.tokenizer.no_padding()
        self._recent: LRUCache[tuple[str, str], ReadSpan | None] = LRUCache(maxsize=512)
        self._lock = threading.Lock()

    def read(self, question: str, sentence: str) -> ReadSpan | None:
        """The answer span in `sentence`, or None when the sentence has no words. The same
        pair is read once: the search reads the best sentences, then the answer its choice."""
        key = (question, sentence)
        with self._lock:
            if key in self._recent:
                return self._recent[key]
        found = self._read(question, sentence)
        with self._lock:
            self._recent[key] = found
        return found

    def answerable(self, question: str, sentence: str) -> float:
        """The probability that `sentence` answers `question` (0 for one with no words)."""
        found = self.read(question, sentence)
        return 0.0 if found is None else found.answerable

    def _read(self, question: str, sentence: str) -> ReadSpan | None:
        enc = self.tokenizer.encode(question, sentence)
        feed = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
        }
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([enc.type_ids], dtype=np.int64)
        start, end = (np.asarray(a)[0] for a in self.session.run(None, feed))
        inside = [i for i, s in enumerate(enc.sequence_ids) if s == 1]
        found = best_span(start, end, inside)
        if found is None:
            return None
        (first, last), probability = found
        answerable = 1.0 - no_answer(start, end, inside)
        return ReadSpan(enc.offsets[first][0], enc.offsets[last][1], probability, answerable)


def no_answer(start: np.ndarray, end: np.ndarray, inside: Sequence[int]) -> float:
    """The probability that the sentence holds no answer: first and last token both on [CLS]
    (token 0), each a softmax over [CLS] and the sentence's tokens. A reader trained without
    no-answer examples puts little weight there."""
    idx = np.asarray([0, *inside])
    ps = np.exp(start[idx] - start[idx].max())
    pe = np.exp(end[idx] - end[idx].max())
    return float((ps[0] / ps.sum()) * (pe[0] / pe.sum()))


def best_span(
    start: np.ndarray, end: np.ndarray, inside: Sequence[int]
) -> tuple[tuple[int, int], float] | None:
    """The most likely (first, last) token pair among `inside` (the sentence's tokens), at most
    MAX_SPAN long, and its probability (first and last each a softmax over the sentence)."""
    if not inside:
        return None
    idx = np.asarray(inside)
    ps = np.exp(start[idx] - start[idx].max())
    pe = np.exp(end[idx] - end[idx].max())
    joint = np.outer(ps / ps.sum(), pe / pe.sum())
    joint = np.triu(joint) - np.triu(joint, MAX_SPAN)  # last >= first, at most MAX_SPAN long
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return (int(idx[i]), int(idx[j])), float(joint[i, j])


class ReaderFileError(AssistantError, ValueError):
    """The reader's file cannot be used: shown as a message with what to run, not a traceback."""


@lru_cache(maxsize=4)
def load_reader(path: Path | None = None) -> SpanReader | None:
    """The reader at `path`, or the shipped one (None when its file is missing: short answers
    then come from the question's wording). A `path` that is not there is an error."""
    if path is None:
        if not DEFAULT_READER.exists():
            return None
        path = DEFAULT_READER
    elif not Path(path).is_file():
        raise ReaderFileError(
            f"No short-answer reader at {path}.",
            "Point ASSISTANT_ANSWER__READER_PATH at a file evals.train_reader wrote, or unset "
            "it to use the shipped reader.",
        )
    tokenizer = tokenizer_path(path)
    try:
        json.loads(tokenizer.read_text(encoding="utf-8"))
        return SpanReader(path, tokenizer)
    except Exception as exc:  # ONNX Runtime raises its own error types
        raise ReaderFileError(
            f"The short-answer reader {path} is unusable: {exc}.",
            "Run `make train` to fit it again, or set ASSISTANT_ANSWER__USE_READER=false.",
        ) from None
