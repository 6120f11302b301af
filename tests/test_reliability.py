"""Faults and hostile input: killed writers, random corpus histories, odd metadata and questions."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.api import Assistant
from assistant.chroma import PASSAGES
from assistant.config import Settings
from assistant.corpus import MANIFEST_NAME, read_manifest, scan, write_manifest
from assistant.embedding import Embedder
from assistant.errors import InputError
from assistant.store import IndexStore
from assistant.types import Answer
from tests.conftest import CORPUS, DATA
from tests.helpers import cli_command


def consistent(settings: Settings, embedder: Embedder) -> Assistant:
    """Open the index and check that its documents, passages and records agree."""
    assistant = Assistant(settings, embedder)
    snap = assistant.snapshot()
    ids = [p.id for p in snap.passages]
    assert len(ids) == len(set(ids)), "duplicate passages"
    for doc in snap.docs.values():
        assert doc.passage_ids, f"{doc.id} has no passages"
        for pid in doc.passage_ids:
            p = snap.by_id[pid]
            assert doc.text[p.start : p.end] == p.text
    return assistant


def equals_corpus(assistant: Assistant) -> None:
    """After a clean index run the store holds exactly the corpus, nothing more."""
    snap = assistant.snapshot()
    expected = {d.id: d.content_hash for d in scan(assistant.settings.corpus_dir).documents}
    assert {d.id: d.content_hash for d in snap.docs.values()} == expected
    assert snap.chroma.collection(PASSAGES).count() == len(snap.passages)


@pytest.mark.slow
def test_indexing_killed_at_random_moments_recovers(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    index = tmp_path / "index"
    settings = Settings(corpus_dir=corpus, index_dir=index)
    rng = random.Random(20261128)
    sources = sorted((corpus / "sources").glob("*.md"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kills = 0
    for round_no in range(16):  # until ten writers have really been killed
        if kills >= 10:
            break
        # Change the corpus so that kills land in first builds, updates, removals and rebuilds.
        args = ["index"]
        if round_no % 3 == 1:
            target = rng.choice(sources)
            target.write_text(target.read_text() + f"\n\nAn added paragraph, version {round_no}.\n")
        elif round_no % 3 == 2 and len(sources) > 10:
            sources.pop(rng.randrange(len(sources))).unlink()
        elif round_no > 0:
            args = ["index", "--rebuild"]
        child = subprocess.Popen(
            cli_command(corpus, index, *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(1.5, 9.0))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        # A fresh process answers: from a consistent index, or after repairing it.
        ask = subprocess.run(
            cli_command(corpus, index, "ask", "What was the Treaty of Aigun?", "--json"),
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert ask.returncode == 0, f"round {round_no}: {ask.stderr[-1500:]}"
        assert json.loads(ask.stdout)["question"] == "What was the Treaty of Aigun?"
        consistent(settings, embedder)
    assert kills >= 10, "ten writers must really have been killed"
    finished = Assistant(settings, embedder)
    finished.index()
    equals_corpus(finished)
    assert not list(index.glob("*.tmp"))


DOC_TEXTS = [
    "# Amur\n\nThe Amur River marks much of the border. It is 2,824 kilometres long.",
    "# Ussuri\n\nThe Ussuri flows north into the Amur near Khabarovsk.\n\n## Islands\n\nBolshoi Ussuriysky lies at the confluence.",
    "Plain notes about the Tea Road. Camel caravans took months.\n\nKyakhta was the trading post.",
    "# Pipelines\n\nPower of Siberia carries gas to China. Deliveries began in 2019.",
]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "edit", "delete", "index", "restart"]),
            st.integers(min_value=0, max_value=5),
            st.integers(min_value=0, max_value=len(DOC_TEXTS) - 1),
        ),
        min_size=1,
        max_size=7,
    )
)
def test_random_histories_keep_the_store_equal_to_the_corpus(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, ops: list[tuple[str, int, int]]
) -> None:
    root = tmp_path_factory.mktemp("history")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(DATA / "tea.txt", corpus / "tea.txt")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    assistant = Assistant(settings, embedder)
    for op, slot, text in ops:
        path = corpus / f"doc-{slot}.md"
        if op == "add" and not path.exists():
            path.write_text(DOC_TEXTS[text])
        elif op == "edit" and path.exists():
            path.write_text(path.read_text() + f"\n\nEdited with text {text}.\n")
        elif op == "delete" and path.exists():
            path.unlink()
        elif op == "index":
            assistant.index()
            equals_corpus(assistant)
        elif op == "restart":
            assistant = Assistant(settings, embedder)
    assistant.index()
    equals_corpus(assistant)
    consistent(settings, embedder)


metadata_values = st.recursive(
    st.one_of(
        st.none(),
        st.text(max_size=40),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=metadata_values, author=metadata_values, date=metadata_values, extra=metadata_values)
def test_random_metadata_is_normalised_and_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    title: object,
    author: object,
    date: object,
    extra: object,
) -> None:
    corpus = tmp_path_factory.mktemp("meta")
    (corpus / "a.md").write_text("# A title from the file\n\nSome text about rivers and borders.")
    entry = {
        "id": "a",
        "file": "a.md",
        "title": title,
        "author": author,
        "date": date,
        "custom": extra,
    }
    clean = {k: v for k, v in entry.items() if v is not None}
    try:
        (corpus / MANIFEST_NAME).write_text(tomli_w.dumps({"documents": [clean]}))
    except (TypeError, ValueError):
        return  # values TOML cannot hold (None inside lists) never reach a manifest file
    meta = scan(corpus).documents[0].meta
    for field in (meta.title, meta.author, meta.date, meta.kind):
        assert isinstance(field, str)
    assert meta.title  # falls back to the file's own title when the manifest's is empty
    write_manifest(corpus, read_manifest(corpus))
    again = scan(corpus).documents[0].meta
    assert again == meta


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(max_size=300),
        st.text(min_size=1900, max_size=2600),
        st.sampled_from(["", " \t", "\x00\x1b[31m", "Россия и 中国 trade?", "🙂" * 50, "?" * 10]),
    )
)
def test_random_questions_never_raise(assistant: Assistant, question: str) -> None:
    try:
        answer = assistant.ask(question)
    except InputError as exc:
        assert "empty" in exc.message or "limit is 2,000" in exc.message
        return
    assert isinstance(answer, Answer)
    for c in answer.citations:
        assert assistant.snapshot().docs[c.doc_id].text[c.start : c.end] == c.quote


def test_truncated_store_file_names_the_rebuild_and_rebuild_recovers(
    small_assistant: Assistant,
) -> None:
    small_assistant.index()
    store = small_assistant.store
    chroma_dir = store.root / store.current_generation() / "chroma"
    for f in chroma_dir.rglob("*.bin"):
        f.write_bytes(f.read_bytes()[:7])
    from click.testing import CliRunner

    from assistant.cli import cli

    args = ["--corpus", str(small_assistant.settings.corpus_dir), "--index", str(store.root)]
    result = CliRunner().invoke(cli, [*args, "ask", "How deep is Lake Baikal?"])
    if result.exit_code != 0:  # the damage was noticed: a message, not a traceback
        assert "assistant index --rebuild" in result.output and "Traceback" not in result.output
    rebuilt = CliRunner().invoke(cli, [*args, "index", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    answer = CliRunner().invoke(cli, [*args, "ask", "How deep is Lake Baikal?", "--json"])
    assert "1,642 metres" in json.loads(answer.stdout)["citations"][0]["quote"]
    assert isinstance(IndexStore(small_assistant.settings).current_generation(), str)
