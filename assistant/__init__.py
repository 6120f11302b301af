"""A question-answering assistant over an article and its supporting sources, with citations.

The names below are the library's public surface: the apps (the web app in ui/, the
evaluation and benchmarks in evals/) import only these, plus `assistant.cli.context` to
register their commands and, for the answer model's training and calibration,
`assistant.answer`, `assistant.answer_model` and `assistant.strength`. tests/test_layers.py
checks it.
"""

from assistant.chat import ChatSession
from assistant.config import PROJECT_ROOT, RetrievalSettings, Settings
from assistant.corpus import scan
from assistant.embedding import Embedder, resolve_model_path
from assistant.errors import AssistantError, InputError
from assistant.followup import Turn
from assistant.fsutil import atomic_write_json, atomic_write_text
from assistant.scope import KINDS, Scope
from assistant.search import Search
from assistant.service import Assistant
from assistant.text import normalize_for_match, split_sentences, terms
from assistant.types import (
    NOT_GIVEN,
    Answer,
    Citation,
    Passage,
    PassageContext,
    Query,
    ShortAnswer,
    SourceSummary,
    StoredDocument,
    SupportResult,
)
from assistant.verify import SUPPORT_THRESHOLD, strip_markers
from assistant.views import context_view, support_view

__all__ = [
    "KINDS",
    "NOT_GIVEN",
    "PROJECT_ROOT",
    "SUPPORT_THRESHOLD",
    "Answer",
    "Assistant",
    "AssistantError",
    "ChatSession",
    "Citation",
    "Embedder",
    "InputError",
    "Passage",
    "PassageContext",
    "Query",
    "RetrievalSettings",
    "Scope",
    "Search",
    "Settings",
    "ShortAnswer",
    "SourceSummary",
    "StoredDocument",
    "SupportResult",
    "Turn",
    "atomic_write_json",
    "atomic_write_text",
    "context_view",
    "normalize_for_match",
    "resolve_model_path",
    "scan",
    "split_sentences",
    "strip_markers",
    "support_view",
    "terms",
]
__version__ = "0.1.0"
