"""Shared fixtures: the real embedding model, real Chroma stores in temporary folders."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant.config import PROJECT_ROOT, Settings
from assistant.embedding import Embedder
from assistant.service import Assistant

pytest_plugins = ["tests.skips"]

# Property tests print the blob that reproduces a failure; in CI they are also derandomised,
# so that a run is repeatable (locally the example database keeps failures to replay them).
hypothesis_settings.register_profile("dev", print_blob=True)
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")

DATA = Path(__file__).parent / "data"
CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def default_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The project's own corpus, indexed once per test session."""
    index_dir = tmp_path_factory.mktemp("default-index")
    Assistant(Settings(corpus_dir=CORPUS, index_dir=index_dir), embedder).index()
    return index_dir


@pytest.fixture(scope="session")
def assistant(default_index: Path, embedder: Embedder) -> Assistant:
    """An assistant over the default corpus (shared: tests must not change it)."""
    return Assistant(Settings(corpus_dir=CORPUS, index_dir=default_index), embedder)


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """A fresh copy of the tiny test documents."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in DATA.iterdir():
        if f.is_file():
            shutil.copy(f, corpus / f.name)
    return corpus


@pytest.fixture
def small_settings(small_corpus: Path, tmp_path: Path) -> Settings:
    return Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")


@pytest.fixture
def small_assistant(small_settings: Settings, embedder: Embedder) -> Iterator[Assistant]:
    yield Assistant(small_settings, embedder)


@pytest.fixture(scope="session")
def web_corpus(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path]:
    """The project's corpus plus a document full of HTML and script payloads, indexed."""
    root = tmp_path_factory.mktemp("web")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(DATA / "hostile" / "zebra-protocol.md", corpus / "documents" / "zebra-protocol.md")
    index = root / "index"
    Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder).index()
    return corpus, index
