"""One Settings object for the whole assistant, built from defaults, env (ASSISTANT_*) and flags.

Nothing here is read at import time: callers build `Settings()` (or `Settings(**overrides)`) and
pass it down.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.errors import InputError

DEFAULT_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_dir(name: str) -> Path:
    """./NAME when the working directory has a corpus, else the project's own folder."""
    if Path("corpus").is_dir():
        return Path(name)
    return PROJECT_ROOT / name


class ChunkSettings(BaseModel):
    """How documents are cut into passages. Changing any of these needs a rebuild."""

    max_tokens: int = Field(
        200, ge=16, le=8192, description="Most word-pieces in one passage (title not counted)."
    )
    min_tokens: int = Field(
        40, ge=0, le=4096, description="Shorter paragraphs join the next one in their section."
    )
    skip_sections: list[str] = Field(
        default_factory=lambda: ["references", "sources", "bibliography", "further reading"],
        description="Section headings (case-insensitive) whose text is not indexed.",
    )


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: dense (Chroma) and BM25 fused by reciprocal rank."""

    top_k: int = Field(5, ge=1, le=100, description="Passages returned to the answerer.")
    candidates: int = Field(
        30, ge=1, le=1000, description="Passages each retriever contributes before fusion."
    )
    rerank_depth: int = Field(
        20, ge=1, le=200, description="Fused passages whose sentences are scored and reranked."
    )
    query_cache: int = Field(
        512,
        ge=0,
        le=1_000_000,
        description="Question vectors kept for repeated questions (0: none).",
    )
    exact_search_limit: int = Field(
        20_000,
        ge=0,
        le=1_000_000,
        description=(
            "Collections of at most this many vectors are searched exactly in memory (faster "
            "at that size, and exact); larger ones with Chroma's HNSW index. 0: always Chroma."
        ),
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank offset in reciprocal rank fusion.")
    dense_weight: float = Field(1.0, ge=0, le=10, description="Weight of the dense ranking.")
    bm25_weight: float = Field(1.0, ge=0, le=10, description="Weight of the BM25 ranking.")
    sentence_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the ranking by each passage's closest sentence."
    )


class AnswerSettings(BaseModel):
    """The extractive answerer and its abstention threshold."""

    max_sentences: int = Field(
        3,
        ge=1,
        le=10,
        description="Most sentences quoted as the answer: the one the answer model chooses, "
        "then others that score nearly as well, or that cover what the question combines.",
    )
    use_model: bool = Field(
        True,
        description="Choose the sentence and abstain with the learned answer model "
        "(assistant/models/answer_model.json); off: the reranker's best and min_score alone.",
    )
    model_min_score: float = Field(
        0.2,
        ge=0,
        le=2,
        description="With the answer model: best sentence score below which nothing is "
        "worth asking it about (a guard; the model's own threshold decides).",
    )
    model_candidates: int = Field(
        8, ge=1, le=50, description="Best-ranked sentences the answer model chooses among."
    )
    min_score: float = Field(
        0.42, ge=0, le=2, description="Best sentence score below which the assistant abstains."
    )
    relative_cutoff: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Extra sentences must score at least this share of the best one.",
    )
    max_question_chars: int = Field(2000, ge=1, description="Longest question accepted.")


class Settings(BaseSettings):
    """Everything configurable, with defaults that run offline on the bundled corpus."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_nested_delimiter="__", extra="ignore"
    )

    corpus_dir: Path = Field(
        default_factory=lambda: _default_dir("corpus"), description="Documents and manifest."
    )
    index_dir: Path = Field(
        default_factory=lambda: _default_dir("index"), description="The persisted index."
    )
    eval_dir: Path = Field(
        default_factory=lambda: _default_dir("evals/runs"),
        description="Where `assistant eval` and the web app's Evals tab write run folders.",
    )
    embed_model: str = Field(
        DEFAULT_EMBED_MODEL,
        description="Sentence-transformers model: a local folder, or a name found offline.",
    )
    query_runtime: Literal["onnx", "numpy", "sentence-transformers"] = Field(
        "onnx",
        description="How questions are embedded, all with the same vectors: ONNX Runtime "
        "(fastest), numpy (no extra package) or sentence-transformers (slow to start). "
        "Indexing always uses sentence-transformers.",
    )
    chroma_url: str | None = Field(
        None, description="http://host:port of a Chroma server; unset keeps the embedded store."
    )
    llm: Literal["none", "openai-compatible", "llama-cpp"] = Field(
        "none", description="Answer with a language model; `none` keeps the extractive answerer."
    )
    llm_url: str | None = Field(None, description="Base URL of an OpenAI-compatible server (…/v1).")
    llm_model: str | None = Field(None, description="Model name to ask the server for.")
    llm_api_key: str | None = Field(None, description="API key, when the server needs one.")
    llm_path: str | None = Field(None, description="GGUF file for the llama-cpp backend.")
    llm_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for the model.")
    llm_max_tokens: int = Field(256, ge=16, le=8192, description="Longest answer, in tokens.")
    llm_context_window: int = Field(2048, ge=512, le=1_000_000, description="Model's window.")
    llm_temperature: float = Field(0.1, ge=0, le=2)
    web_workers: int = Field(4, ge=1, le=64, description="Answers the web app computes at once.")
    web_waiting: int = Field(
        64, ge=0, le=10_000, description="Questions that may wait for a worker; more get 'busy'."
    )
    web_wait_s: float = Field(30.0, gt=0, le=600, description="Longest wait before 'busy'.")
    auth: str | None = Field(
        None, description="user:password to require a login in the web app; unset, no login."
    )
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)

    @field_validator("chroma_url", "auth", "llm_url", "llm_model", "llm_api_key", "llm_path")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    def index_fingerprint(self) -> dict[str, object]:
        """The settings an index depends on; an index built with others must be rebuilt."""
        return {"embed_model": self.embed_model, "chunk": self.chunk.model_dump()}

    def run_hash(self) -> str:
        """A short hash of every setting, stamped on eval runs and answers."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


_SECRET_PARTS = ("key", "auth", "password", "token")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and these overrides. A bad value is an InputError that
    names its environment variable and says what is expected (secrets are not echoed)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = [str(part) for part in err["loc"]]
            name = "ASSISTANT_" + "__".join(path).upper()
            shown = (
                "" if any(p in name.lower() for p in _SECRET_PARTS) else f", got {err['input']!r}"
            )
            problems.append(f"{name}: {err['msg']}{shown}")
        raise InputError(
            "Invalid setting: " + "; ".join(problems) + ".",
            "Fix or unset that environment variable (or the matching option); README.md lists "
            "the settings and their defaults.",
        ) from None
