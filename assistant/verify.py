"""The support check: does a passage support a sentence? Used by every answer mode before the
user sees it, by `assistant cite`, and by the evaluation."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.text import normalize_for_match, numbers, terms
from assistant.types import AnswerSentence, Passage

SUPPORT_THRESHOLD = 0.5
_SEM_LOW, _SEM_HIGH = 0.30, 0.75
# Text addressed to a language model rather than to a reader ("ignore all previous
# instructions", "reply only with the word ..."): planted in a document, it would otherwise
# "support" a model that obeyed it, since the obeying sentence repeats its words.
_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,60}\b(instructions?|rules?|prompts?)\b"
    r"|\b(reply|respond|answer|say|output|print|write)\s+(only\s+)?(with\s+)?"
    r"(the\s+(word|phrase|code)|exactly)\b"
    r"|\bsystem\s+(notice|prompt|message|instruction)s?\b"
    r"|\byou are (now )?(an? )?(ai|assistant|language model|chatbot)\b",
    re.I,
)

IdfFn = Callable[[str], float]


def is_instruction(sentence: str) -> bool:
    """Whether a sentence of a document speaks to a language model (a prompt injection)."""
    return bool(_INSTRUCTION.search(sentence))


@dataclass
class Support:
    """A support score in 0..1 and the passage sentence (index) that matches the claim best."""

    score: float
    sentence: int | None


def _weighted_recall(claim_terms: set[str], passage_terms: set[str], idf: IdfFn) -> float:
    total = sum(idf(t) for t in claim_terms)
    if total <= 0:
        return 0.0
    return sum(idf(t) for t in claim_terms if t in passage_terms) / total


def support(
    claim: str,
    passage: Passage,
    idf: IdfFn,
    claim_vector: np.ndarray | None = None,
    sentence_vectors: np.ndarray | None = None,
) -> Support:
    """How well `passage` supports `claim`, from shared weighted terms, matching figures and the
    closest sentence's embedding similarity. Sentences that speak to a language model support
    nothing."""
    sentences = passage.sentence_texts()
    usable = [not is_instruction(text) for text in sentences]
    norm_claim = normalize_for_match(strip_markers(claim))
    if not norm_claim or not any(usable):
        return Support(0.0, None)
    for i, sentence in enumerate(sentences):
        if not usable[i]:
            continue
        norm_sentence = normalize_for_match(sentence)
        if norm_claim == norm_sentence or (len(norm_claim) >= 20 and norm_claim in norm_sentence):
            return Support(1.0, i)
    claim_terms = set(terms(claim))
    readable = " ".join(text for text, ok in zip(sentences, usable, strict=True) if ok)
    lexical = _weighted_recall(claim_terms, set(terms(readable)), idf) if claim_terms else 0.0
    per_sentence = [
        _weighted_recall(claim_terms, set(terms(text)), idf) if claim_terms and ok else 0.0
        for text, ok in zip(sentences, usable, strict=True)
    ]
    sims = [0.0] * len(sentences)
    if claim_vector is not None and sentence_vectors is not None and len(sentence_vectors):
        raw = sentence_vectors @ claim_vector
        sims = [
            float(np.clip((x - _SEM_LOW) / (_SEM_HIGH - _SEM_LOW), 0.0, 1.0)) if ok else 0.0
            for x, ok in zip(raw, usable, strict=True)
        ]
        combined = [0.5 * lex + 0.5 * sem for lex, sem in zip(per_sentence, sims, strict=True)]
        # A claim may draw on two sentences of the passage: the passage's words count too.
        score = max(max(combined), 0.5 * lexical + 0.5 * max(sims))
    else:
        combined = per_sentence
        score = lexical
    best_i: int | None = int(np.argmax(combined)) if combined else None
    missing_figures = numbers(claim) - numbers(readable)
    if missing_figures:
        score = min(score, 0.25)
    return Support(round(float(score), 4), best_i)


_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")


def strip_markers(text: str) -> str:
    """A sentence without its citation markers."""
    return _MARKER.sub("", text).strip()


def markers(text: str) -> list[int]:
    """The citation numbers in a sentence, in order, each once."""
    out: list[int] = []
    for group in _MARKER.findall(text):
        for n in group.split(","):
            value = int(n)
            if value not in out:
                out.append(value)
    return out


def check_sentences(
    sentences: Sequence[AnswerSentence],
    cited: dict[int, Passage],
    idf: IdfFn,
    claim_vectors: Sequence[np.ndarray] | None = None,
    sentence_vectors: dict[str, np.ndarray] | None = None,
    threshold: float = SUPPORT_THRESHOLD,
) -> list[AnswerSentence]:
    """Score each sentence against the passages it cites (`cited` maps citation numbers to
    retrieved passages); markers that point at anything else are dropped."""
    out = []
    for pos, sentence in enumerate(sentences):
        valid = [n for n in sentence.citations if n in cited]
        claim_vec = claim_vectors[pos] if claim_vectors is not None else None
        best = 0.0
        for n in valid:
            passage = cited[n]
            vecs = sentence_vectors.get(passage.id) if sentence_vectors else None
            best = max(best, support(sentence.text, passage, idf, claim_vec, vecs).score)
        out.append(
            AnswerSentence(
                text=sentence.text,
                citations=valid,
                support=round(best, 4),
                supported=bool(valid) and best >= threshold,
            )
        )
    return out
