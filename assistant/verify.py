"""The support check: does a passage support a sentence? Used by every answer mode before the
user sees it, by `assistant cite`, and by the evaluation."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.config import VerifySettings
from assistant.text import normalize_for_match, numbers, terms
from assistant.types import Passage

# The default threshold, for judges outside an answer (the evaluation); answers use the
# threshold of their settings (`Settings.verify`).
SUPPORT_THRESHOLD = VerifySettings().support_threshold
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


def _similarity_range(settings: VerifySettings) -> tuple[float, float]:
    low = settings.similarity_floor
    return low, max(settings.similarity_ceiling, low + 1e-6)


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
    settings: VerifySettings | None = None,
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
        low, high = _similarity_range(settings or VerifySettings())
        sims = [
            float(np.clip((x - low) / (high - low), 0.0, 1.0)) if ok else 0.0
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


@dataclass
class CheckedClaim:
    """A sentence of a generated answer after the support check."""

    text: str  # the claim, without its citation markers
    citations: list[int]  # its markers that point at passages it was given
    support: float  # the best support among the cited passages (0 when it cites none)
    sentences: dict[int, int | None]  # per citation: the passage sentence that matches best
    inferred: bool = False  # it had no usable marker; it cites the passage that supports it


def check_claims(
    sentences: Sequence[str],
    passages: dict[int, Passage],
    idf: IdfFn,
    claim_vectors: np.ndarray | Sequence[np.ndarray] | None = None,
    sentence_vectors: dict[str, np.ndarray] | None = None,
    settings: VerifySettings | None = None,
) -> list[CheckedClaim]:
    """Score each sentence (with its "[n]" markers) against the passages it cites; `passages`
    maps citation numbers to the passages the writer was given, and markers that point at
    anything else are dropped. A sentence without a usable marker (small models often leave
    it out) cites the given passage that supports it, if one does, never one merely nearby."""
    settings = settings or VerifySettings()
    out = []
    for pos, sentence in enumerate(sentences):
        claim = strip_markers(sentence)
        vec = claim_vectors[pos] if claim_vectors is not None else None

        def check(passage: Passage, claim: str = claim, vec: np.ndarray | None = vec) -> Support:
            vecs = sentence_vectors.get(passage.id) if sentence_vectors else None
            return support(claim, passage, idf, vec, vecs, settings)

        cited = [n for n in markers(sentence) if n in passages]
        found = {n: check(passages[n]) for n in cited}
        result = CheckedClaim(
            claim,
            cited,
            max((s.score for s in found.values()), default=0.0),
            {n: s.sentence for n, s in found.items()},
        )
        if not cited and claim:
            scored = [(check(p), n) for n, p in passages.items()]
            top = max(scored, key=lambda x: x[0].score, default=None)
            if top is not None and top[0].score >= settings.support_threshold:
                result = CheckedClaim(
                    claim, [top[1]], top[0].score, {top[1]: top[0].sentence}, inferred=True
                )
        out.append(result)
    return out
