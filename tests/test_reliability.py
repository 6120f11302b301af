"""Hostile input and damage: random corpus histories, odd metadata and questions, truncated
store files. Writers stopped at each crash point are in test_faults.py."""

from __future__ import annotations

import json
import shutil

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.config import Settings
from assistant.corpus import MANIFEST_NAME, read_manifest, scan, write_manifest
from assistant.embedding import Embedder
from assistant.errors import InputError
from assistant.service import Assistant
from assistant.store import IndexStore
from assistant.store.chroma import PASSAGES
from assistant.types import Answer
from tests.conftest import DATA


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


@pytest.mark.parametrize("damaged", ["chroma.sqlite3", "*.bin"])
def test_truncated_store_file_names_the_rebuild_and_rebuild_recovers(
    small_assistant: Assistant, embedder: Embedder, damaged: str
) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    small_assistant.index()
    store = small_assistant.store
    damaged_generation = store.current_generation()
    assert damaged_generation is not None
    chroma_dir = store.root / damaged_generation / "chroma"
    files = sorted(chroma_dir.rglob(damaged))
    assert files, f"no {damaged} under {chroma_dir} to truncate"
    for f in files:
        f.write_bytes(f.read_bytes()[:7])
    args = ["--corpus", str(small_assistant.settings.corpus_dir), "--index", str(store.root)]
    question = ["ask", "How deep is Lake Baikal?", "--json"]
    first = CliRunner().invoke(cli, [*args, *question])
    if damaged == "chroma.sqlite3":
        # The database holds every record: the damage is noticed, and named, not a traceback.
        assert first.exit_code == 1, first.output
        assert "unreadable" in first.output and "assistant index --rebuild" in first.output
        assert isinstance(first.exception, SystemExit), first.exception
    else:
        # The HNSW files of an index this small hold no vectors yet (Chroma keeps them in the
        # database until a collection grows): answers do not depend on them.
        assert first.exit_code == 0, first.output
        assert "1,642 metres" in json.loads(first.stdout)["citations"][0]["quote"]
    rebuilt = CliRunner().invoke(cli, [*args, "index", "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    answer = CliRunner().invoke(cli, [*args, *question])
    assert answer.exit_code == 0, answer.output
    assert "1,642 metres" in json.loads(answer.stdout)["citations"][0]["quote"]
    assert IndexStore(small_assistant.settings).current_generation() != damaged_generation
    equals_corpus(consistent(small_assistant.settings, embedder))
