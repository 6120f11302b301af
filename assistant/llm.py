"""Generative answers from a language model, through llama-index's LLM integrations.

Backends: `openai-compatible` (any server speaking the OpenAI chat API: llama.cpp's server,
vLLM, Ollama, LM Studio, OpenAI) and `llama-cpp` (a GGUF file, served by llama.cpp in a child
process that this process starts and stops: see llm_process.py). Whatever the
model writes is checked sentence by sentence against the passages it cites before anyone sees
it; when the model fails or most of its answer is unsupported, the extractive answer is given
instead, with a note saying why.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant import prompts
from assistant.answer import NO_ANSWER, abstention, make_citation
from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.followup import is_followup
from assistant.llm_process import INSTALL_HINT, ChildProcessLLM, ModelProcessError, model_server
from assistant.text import split_sentences
from assistant.types import (
    Answer,
    AnswerSentence,
    Citation,
    Passage,
    Query,
    ScoredPassage,
    StoredDocument,
)
from assistant.verify import CheckedClaim, check_claims, strip_markers

# A sentence scoring below this against every passage it cites is dropped, not just marked.


def _openai_like(settings: Settings, url: str, model: str) -> Any:
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError:
        raise AssistantError(
            "The OpenAI-compatible backend is not installed.", INSTALL_HINT
        ) from None
    return OpenAILike(
        model=model,
        api_base=url.rstrip("/"),
        api_key=settings.llm.api_key or "not-needed",
        is_chat_model=True,
        context_window=settings.llm.context_window,
        max_tokens=settings.llm.max_tokens,
        temperature=settings.llm.temperature,
        timeout=settings.llm.timeout,
        max_retries=0,
    )


def build_llm(settings: Settings) -> Any:
    """The configured llama-index LLM, or None in extractive mode."""
    backend = settings.llm.backend
    if backend in (None, "", "none", "extractive"):
        return None
    if backend == "openai-compatible":
        if not settings.llm.url:
            raise AssistantError(
                "ASSISTANT_LLM=openai-compatible needs a server URL.",
                "Set ASSISTANT_LLM_URL (or --llm-url), e.g. http://127.0.0.1:8080/v1.",
            )
        return _openai_like(settings, settings.llm.url, settings.llm.model or "local-model")
    if backend == "llama-cpp":
        if not settings.llm.path:
            raise AssistantError(
                "ASSISTANT_LLM=llama-cpp needs a GGUF model file.",
                "Set ASSISTANT_LLM_PATH (or --llm-path) to the .gguf file.",
            )
        path = Path(settings.llm.path).expanduser()
        if not path.is_file():
            raise AssistantError(
                f"No model file at {path}.", "Set ASSISTANT_LLM_PATH to a .gguf file."
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise AssistantError("The llama-cpp backend is not installed.", INSTALL_HINT)
        _openai_like(settings, "http://127.0.0.1/v1", "check")  # the client is installed
        # The model runs in a child process: a crash in native code cannot end the assistant.
        server = model_server(path, settings.llm.context_window)
        return ChildProcessLLM(server, lambda url: _openai_like(settings, url, path.stem))
    raise AssistantError(
        f"Unknown LLM backend {backend!r}.",
        "Use ASSISTANT_LLM=openai-compatible or llama-cpp (or leave it unset for extractive answers).",
    )


def _messages(system: str, user: str) -> list[Any]:
    from llama_index.core.llms import ChatMessage, MessageRole

    return [
        ChatMessage(role=MessageRole.SYSTEM, content=system),
        ChatMessage(role=MessageRole.USER, content=user),
    ]


def describe_failure(exc: BaseException, settings: Settings) -> str:
    """What went wrong with the model, in words a user can act on."""
    if isinstance(exc, ModelProcessError):
        return exc.message
    name = exc.__class__.__name__
    text = str(exc)
    where = settings.llm.url or settings.llm.path or "the model"
    if "Connect" in name or "connection" in text.lower() or "refused" in text.lower():
        return f"the model server at {where} could not be reached"
    if "Timeout" in name or "timed out" in text.lower():
        return f"the model at {where} did not answer within {settings.llm.timeout:.0f} s"
    if "context" in text.lower() and ("length" in text.lower() or "window" in text.lower()):
        return "the question and passages did not fit the model's context window"
    return f"the model failed ({name}: {text[:160]})"


@dataclass
class Prompted:
    """The passages that fit the model's window, numbered as the prompt numbers them."""

    passages: list[ScoredPassage]
    user: str


def build_prompt(
    question: str,
    passages: Sequence[ScoredPassage],
    docs: dict[str, StoredDocument],
    budget_tokens: int,
    count_tokens: Callable[[Sequence[str]], list[int]],
) -> Prompted:
    """Number the passages and keep as many as fit, dropping the lowest-ranked first."""
    blocks: list[str] = []
    kept: list[ScoredPassage] = []
    used = count_tokens([prompts.ANSWER_SYSTEM, question])
    total = sum(used) + 50
    for sp in passages:
        title = (
            docs[sp.passage.doc_id].meta.title if sp.passage.doc_id in docs else sp.passage.doc_id
        )
        block = prompts.PASSAGE.format(
            n=len(kept) + 1, title=_attr(title), text=_quoted(sp.passage.text)
        )
        # The embedding tokenizer is not the model's; a margin covers the difference.
        cost = int(count_tokens([block])[0] * 1.3) + 10
        if kept and total + cost > budget_tokens:
            break
        kept.append(sp)
        blocks.append(block)
        total += cost
    return Prompted(
        kept, prompts.ANSWER_USER.format(passages="\n\n".join(blocks), question=question)
    )


def _attr(text: str) -> str:
    return text.replace('"', "'").replace("<", "(").replace(">", ")")


def _quoted(text: str) -> str:
    """Passage text that cannot close its own tag."""
    return re.sub(r"</?\s*passage", "(passage", text, flags=re.I)


class GenerativeAnswerer:
    """Streams a model's answer, then verifies every sentence before returning it."""

    def __init__(
        self,
        llm: Any,
        settings: Settings,
        embed: Callable[[Sequence[str]], np.ndarray],
        idf: Callable[[str], float],
        count_tokens: Callable[[Sequence[str]], list[int]],
        vectors: Callable[[Sequence[str]], dict[str, np.ndarray]],
    ) -> None:
        self.llm = llm
        self.settings = settings
        self.embed = embed
        self.idf = idf
        self.count_tokens = count_tokens
        self.vectors = vectors

    def stream(
        self,
        question: str,
        passages: list[ScoredPassage],
        docs: dict[str, StoredDocument],
        fallback: Callable[[str], Answer],
        strict: bool = False,
    ) -> Iterator[str | Answer]:
        """Yields the model's text as it arrives, then the verified Answer (always last)."""
        budget = self.settings.llm.context_window - self.settings.llm.max_tokens
        prompt = build_prompt(question, passages, docs, budget, self.count_tokens)
        chunks: list[str] = []
        try:
            for response in self.llm.stream_chat(_messages(prompts.ANSWER_SYSTEM, prompt.user)):
                delta = response.delta or ""
                if delta:
                    chunks.append(delta)
                    yield delta
        except Exception as exc:  # any model failure ends in the extractive answer
            yield fallback(
                f"No generated answer: {describe_failure(exc, self.settings)}. Showing the extractive answer."
            )
            return
        text = "".join(chunks).strip()
        yield self.verify(question, text, prompt.passages, passages, docs, fallback, strict)

    def verify(
        self,
        question: str,
        text: str,
        numbered: list[ScoredPassage],
        retrieved: list[ScoredPassage],
        docs: dict[str, StoredDocument],
        fallback: Callable[[str], Answer],
        strict: bool,
    ) -> Answer:
        """Check each sentence against the passages it cites; keep, mark or drop it."""
        if not text:
            return fallback("The model returned an empty reply. Showing the extractive answer.")
        if (
            text.upper().startswith(prompts.NO_ANSWER_TOKEN)
            or prompts.NO_ANSWER_TOKEN in text[:40].upper()
        ):
            answer = abstention(
                question, retrieved, note="The model found no answer in the passages."
            )
            answer.mode = "llm"
            return answer
        spans = split_sentences(text)
        raw = [text[s:e] for s, e in spans]
        # A marker standing alone ("[2]") belongs to the sentence before it.
        merged: list[str] = []
        for sentence in raw:
            if merged and not strip_markers(sentence):
                merged[-1] += " " + sentence
            else:
                merged.append(sentence)
        by_n = {n: sp.passage for n, sp in enumerate(numbered, start=1)}
        claims = [strip_markers(s) for s in merged]
        if not any(claims):
            return fallback(
                "The model's reply had no sentences to check. Showing the extractive answer."
            )
        claim_vectors = self.embed([c or "." for c in claims])
        sentence_vectors = self.vectors([p.id for p in by_n.values()])
        limits = self.settings.verify
        checked = check_claims(merged, by_n, self.idf, claim_vectors, sentence_vectors, limits)
        unmarked = sum(1 for c in checked if c.inferred)
        total = len(checked)
        kept = [c for c in checked if c.citations and c.support >= limits.drop_below and c.text]
        supported = [c for c in kept if c.support >= limits.support_threshold]
        if len(supported) * 2 < total or not supported:
            return fallback(
                f"The model's answer could not be verified against the sources ({len(supported)} of "
                f"{total} sentences supported). Showing the extractive answer."
            )
        if strict:
            kept = supported
        answer = self._compose(question, kept, by_n, retrieved, docs, dropped=total - len(kept))
        if unmarked:
            cited_note = (
                f"{unmarked} sentence(s) came without a citation marker and cite the passage "
                "that supports them."
            )
            answer.note = f"{answer.note} {cited_note}".strip()
        return answer

    def _compose(
        self,
        question: str,
        kept: list[CheckedClaim],
        by_n: dict[int, Passage],
        retrieved: list[ScoredPassage],
        docs: dict[str, StoredDocument],
        dropped: int,
    ) -> Answer:
        renumber: dict[int, int] = {}
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        for claim, cited, score, where in (
            (c.text, c.citations, c.support, c.sentences) for c in kept
        ):
            new = []
            for n in cited:
                if n not in renumber:
                    renumber[n] = len(renumber) + 1
                    p = by_n[n]
                    index = where.get(n)
                    span = p.sentences[index] if index is not None else p.sentences[0]
                    citations.append(make_citation(renumber[n], p, span, docs.get(p.doc_id)))
                new.append(renumber[n])
            sentences.append(
                AnswerSentence(
                    text=" ".join(claim.split()),
                    citations=new,
                    support=round(score, 4),
                    supported=score >= self.settings.verify.support_threshold,
                )
            )
        body = " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}" for s in sentences)
        note = (
            f"{dropped} sentence(s) without support in the sources were left out."
            if dropped
            else ""
        )
        return Answer(
            question=question,
            text=body,
            abstained=False,
            sentences=sentences,
            citations=citations,
            passages=retrieved,
            note=note,
            mode="llm",
        )


class LLMRewriter:
    """Rewrites follow-ups into standalone questions with the model; keywords if it fails."""

    def __init__(self, llm: Any, fallback: Any) -> None:
        self.llm = llm
        self.fallback = fallback

    def rewrite(self, question: str, history: list[Any]) -> Query:
        if not history or not is_followup(question):
            return Query(question)
        earlier = "\n".join(f"- {t.standalone}" for t in history[-3:])
        try:
            reply = self.llm.chat(
                _messages(
                    prompts.REWRITE_SYSTEM,
                    prompts.REWRITE_USER.format(history=earlier, question=question),
                )
            )
            text = " ".join(str(reply.message.content or "").split())
        except Exception:
            return self.fallback.rewrite(question, history)
        if not text or len(text) > 400 or NO_ANSWER in text:
            return self.fallback.rewrite(question, history)
        return Query(text)
