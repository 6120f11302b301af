"""Asking within chosen documents: retrieval keeps to the scope on both search paths (exact in
memory and Chroma's HNSW index) and still fills k, answers cite only the chosen documents,
follow-ups keep the scope, a scope that does not say names the best lead outside it, and a
bad scope is refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.answer import NO_ANSWER
from assistant.chat import ChatSession
from assistant.config import RetrievalSettings, Settings
from assistant.embedding import Embedder
from assistant.errors import InputError
from assistant.scope import SCOPED_NO_ANSWER, Scope
from assistant.service import Assistant
from assistant.store.chroma import PASSAGES, SENTENCES
from assistant.text import terms
from tests.conftest import CORPUS
from tests.test_cli import run

TRADE = "How large was bilateral trade between Russia and China in 2023?"
PIPELINE = "When did deliveries through the Power of Siberia pipeline begin?"
SIBERIA = "power-of-siberia"
TREATY = "treaty-of-aigun-and-convention-of-peking"
BRIEF = "russia-china-trade"
FOLLOW_UP = "What did they export?"
SMALL = {  # id -> (file, kind): the documents of the small index searched through HNSW
    "sino-russian-relations": ("documents/sino-russian-relations.md", "article"),
    SIBERIA: ("sources/power-of-siberia.md", "source"),
    "russia-china-trade": ("sources/russia-china-trade.md", "source"),
    "middle-corridor": ("sources/middle-corridor.md", "source"),
    TREATY: ("sources/treaty-of-aigun-and-convention-of-peking.md", "source"),
}


@pytest.fixture(scope="module")
def hnsw(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Assistant]:
    """An assistant over a small index of five documents in a temporary folder, every
    collection searched through Chroma's HNSW index (nothing in memory)."""
    root = tmp_path_factory.mktemp("scope-hnsw")
    corpus = root / "corpus"
    entries = []
    for doc_id, (file, kind) in SMALL.items():
        (corpus / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / file, corpus / file)
        entries.append(f'[[documents]]\nid = "{doc_id}"\nfile = "{file}"\nkind = "{kind}"\n')
    (corpus / "sources.toml").write_text("\n".join(entries), encoding="utf-8")
    settings = Settings(
        corpus_dir=corpus,
        index_dir=root / "index",
        retrieval=RetrievalSettings(exact_search_limit=0),
    )
    assistant = Assistant(settings, embedder)
    assistant.index()
    yield assistant


def passages_of(assistant: Assistant, doc_id: str) -> int:
    return sum(1 for p in assistant.passages() if p.doc_id == doc_id)


# --- the scope itself -----------------------------------------------------------------------


def test_a_scope_takes_in_chosen_ids_and_every_document_of_a_chosen_kind() -> None:
    kinds = {"a": "article", "s1": "source", "s2": "source"}
    assert Scope().resolve(kinds) is None  # empty: every document
    assert not Scope.of([" ", ""], [])
    assert Scope.of(["s1"]).resolve(kinds) == {"s1"}
    assert Scope.of(["s1"], ["article"]).resolve(kinds) == {"s1", "a"}
    assert Scope.of(kinds=["Source"]).resolve(kinds) == {"s1", "s2"}
    assert Scope.from_dict(Scope.of(["s1"], ["article"]).to_dict()) == Scope.of(["s1"], ["article"])


@pytest.mark.parametrize(
    ("scope", "message", "hint"),
    [
        (Scope.of(["s11"]), "No document with id 's11' in the index. Did you mean 's1'?", "a, s1"),
        (Scope.of(kinds=["essay"]), "Unknown document kind 'essay'.", "article, source"),
        (Scope.of(kinds=["article"]), "No indexed document is of kind article.", "s1, s2"),
    ],
)
def test_an_unknown_id_or_kind_is_refused_naming_the_valid_ones(
    scope: Scope, message: str, hint: str
) -> None:
    kinds = {"a": "article", "s1": "source", "s2": "source"}
    if "kind article" in message:
        kinds = {"s1": "source", "s2": "source"}
    with pytest.raises(InputError) as caught:
        scope.resolve(kinds)
    assert caught.value.message == message
    assert caught.value.hint is not None and hint in caught.value.hint


def test_a_scope_given_as_something_else_than_strings_is_refused() -> None:
    with pytest.raises(InputError, match="must be a list of strings"):
        Scope.from_dict({"docs": [1, 2]})
    # A misspelt key would answer from every document, silently.
    with pytest.raises(InputError, match="unknown key 'doc'"):
        Scope.from_dict({"doc": ["power-of-siberia"]})
    with pytest.raises(InputError, match="hold an empty string"):
        Scope.from_dict({"docs": ["  "]})
    with pytest.raises(InputError, match="must be an object"):
        Scope.from_dict(["power-of-siberia"])  # type: ignore[arg-type]
    # One id as a string is that id, not its letters.
    assert Scope.of("brics") == Scope.of(["brics"]) == Scope.from_dict({"docs": "brics"})


def test_the_python_api_turns_bad_arguments_into_input_errors(assistant: Assistant) -> None:
    for call, message in (
        (lambda: assistant.ask(123), "must be text, not int"),  # type: ignore[arg-type]
        (lambda: assistant.ask(TRADE, k=-1), "k must be a whole number of at least 1"),
        (lambda: assistant.ask(TRADE, k=0), "k must be a whole number of at least 1"),
        (lambda: assistant.ask(TRADE, k="3"), "k must be"),  # type: ignore[arg-type]
        (lambda: assistant.cite("China sells gas", k=-3), "k must be"),
        (lambda: assistant.context("x:1", -5), "chars must be"),
        (lambda: assistant.passage(5), "A passage id is text"),  # type: ignore[arg-type]
        (lambda: assistant.ask(TRADE, scope=3), "A scope is a Scope"),  # type: ignore[arg-type]
        (lambda: assistant.ask(TRADE, scope=["  "]), "hold an empty string"),
        (lambda: assistant.ask(TRADE, scope=""), "hold an empty string"),
    ):
        with pytest.raises(InputError, match=message):
            call()
    # A mapping or ids are taken as a scope, as the JSON API and the CLI take them.
    for scope in ({"docs": [SIBERIA]}, [SIBERIA], SIBERIA):
        answer = assistant.ask(TRADE, scope=scope)  # type: ignore[arg-type]
        assert answer.scope == Scope.of([SIBERIA])


# --- retrieval, on both search paths -------------------------------------------------------


def test_exact_search_in_memory_keeps_to_the_scope_and_fills_k(assistant: Assistant) -> None:
    snapshot = assistant.snapshot()
    assert snapshot.in_memory(PASSAGES) and snapshot.in_memory(SENTENCES)
    assert passages_of(assistant, SIBERIA) >= 4
    unscoped = assistant.retrieve(TRADE, k=4)
    assert any(sp.passage.doc_id != SIBERIA for sp in unscoped)  # the scope has work to do
    found = assistant.search(TRADE, k=4, scope=Scope.of([SIBERIA])).passages
    assert len(found) == 4 and {sp.passage.doc_id for sp in found} == {SIBERIA}
    vector = assistant.embed_query(TRADE)
    docs = frozenset({SIBERIA})
    dense = snapshot.dense_search(vector, 4, docs)
    sentences = snapshot.sentence_search(vector, 6, docs)
    assert len(dense) == 4 and len(sentences) == 6
    assert {snapshot.by_id[pid].doc_id for pid, _ in dense} == {SIBERIA}
    assert {snapshot.by_id[pid].doc_id for pid, _, _ in sentences} == {SIBERIA}
    retriever = assistant.retriever()
    lexical = retriever.lexical.search(terms(TRADE), 4, retriever.in_scope(docs))
    assert len(lexical) == 4
    assert {retriever.lexical.passages[i].doc_id for i, _ in lexical} == {SIBERIA}


def test_hnsw_search_keeps_to_the_scope_and_fills_k(hnsw: Assistant) -> None:
    snapshot = hnsw.snapshot()
    assert not snapshot.in_memory(PASSAGES) and not snapshot.in_memory(SENTENCES)
    docs = frozenset({SIBERIA})
    vector = hnsw.embed_query(TRADE)
    assert any(snapshot.by_id[pid].doc_id != SIBERIA for pid, _ in snapshot.dense_search(vector, 4))
    dense = snapshot.dense_search(vector, 4, docs)
    sentences = snapshot.sentence_search(vector, 6, docs)
    assert len(dense) == 4 and {snapshot.by_id[pid].doc_id for pid, _ in dense} == {SIBERIA}
    assert len(sentences) == 6
    assert {snapshot.by_id[pid].doc_id for pid, _, _ in sentences} == {SIBERIA}
    # The filtered walk finds the true nearest of the scope: those an exact search finds.
    table = snapshot.chroma.all_vectors(PASSAGES, {"doc_id": SIBERIA})
    sims = table[1] @ vector
    exact = [table[0][i] for i in sorted(range(len(sims)), key=lambda i: -sims[i])[:4]]
    assert [pid for pid, _ in dense] == exact
    found = hnsw.search(TRADE, k=4, scope=Scope.of([SIBERIA])).passages
    assert len(found) == 4 and {sp.passage.doc_id for sp in found} == {SIBERIA}
    by_kind = hnsw.search(TRADE, k=5, scope=Scope.of(kinds=["article"])).passages
    assert len(by_kind) == 5 and {sp.passage.doc_id for sp in by_kind} == {"sino-russian-relations"}


def test_a_short_hnsw_walk_is_completed_by_an_exact_search_of_the_scope(
    hnsw: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chroma's filtered walk may stop short of k when the scope is a small part of the
    collection; the scope's own vectors are then searched exactly, and k still come back."""
    snapshot = hnsw.snapshot()
    real = type(snapshot.chroma).nearest

    def short(self, name, vector, k, total, where=None):  # type: ignore[no-untyped-def]
        return real(self, name, vector, k, total, where)[:1]

    monkeypatch.setattr(type(snapshot.chroma), "nearest", short)
    dense = snapshot.dense_search(hnsw.embed_query(PIPELINE), 4, frozenset({SIBERIA}))
    assert len(dense) == 4 and {snapshot.by_id[pid].doc_id for pid, _ in dense} == {SIBERIA}


# --- answers ---------------------------------------------------------------------------------


def test_a_scoped_answer_cites_only_the_chosen_documents(assistant: Assistant) -> None:
    unscoped = assistant.ask(TRADE)
    assert not unscoped.abstained
    assert unscoped.citations[0].doc_id == "sino-russian-relations"
    answer = assistant.ask(TRADE, scope=Scope.of(["russia-china-trade"]))
    assert not answer.abstained and answer.citations
    assert {c.doc_id for c in answer.citations} == {"russia-china-trade"}
    assert "240 billion" in answer.citations[0].quote
    assert answer.to_dict()["scope"] == {"docs": ["russia-china-trade"], "kinds": []}
    assert "scope" not in unscoped.to_dict()  # an unscoped answer's JSON is as it was
    by_kind = assistant.ask(PIPELINE, scope=Scope.of(kinds=["source"]))
    assert by_kind.citations and {c.kind for c in by_kind.citations} == {"source"}


def test_the_chosen_documents_do_not_say_and_the_lead_outside_is_named(
    assistant: Assistant,
) -> None:
    unscoped = assistant.ask(TRADE)
    answer = assistant.ask(TRADE, scope=Scope.of([TREATY]))
    assert answer.abstained and not answer.citations
    assert answer.text.startswith(SCOPED_NO_ANSWER) and answer.text != NO_ANSWER
    lead = unscoped.citations[0]
    assert answer.lead is not None and answer.lead.passage_id == lead.passage_id
    assert answer.lead.title == lead.title and answer.lead.doc_id != TREATY
    assert f"\u201c{lead.title}\u201d (passage {lead.passage_id})" in answer.text
    data = answer.to_dict()
    assert data["lead"] == {
        "passage_id": lead.passage_id,
        "doc_id": lead.doc_id,
        "title": lead.title,
    }
    assert data["answer"] == answer.text and data["abstained"] is True
    nowhere = assistant.ask("What is the capital of Peru?", scope=Scope.of([TREATY]))
    assert nowhere.abstained and nowhere.lead is None
    assert nowhere.text == f"{SCOPED_NO_ANSWER} Nor do the other documents."


def test_a_follow_up_keeps_the_scope_and_the_session_keeps_it_in_json(
    assistant: Assistant,
) -> None:
    # Unscoped, this follow-up is answered from other documents too.
    unscoped = ChatSession(assistant)
    unscoped.ask(TRADE)
    assert any(c.doc_id != BRIEF for c in unscoped.ask(FOLLOW_UP).citations)
    session = ChatSession(assistant, scope=Scope.of([BRIEF]))
    first = session.ask(TRADE)
    second = session.ask(FOLLOW_UP)
    assert second.standalone_question != FOLLOW_UP  # a follow-up, rewritten
    assert first.citations and second.citations
    assert {c.doc_id for a in (first, second) for c in a.citations} == {BRIEF}
    assert second.scope == Scope.of([BRIEF])
    restored = ChatSession.from_json(assistant, session.to_json())
    assert restored.scope == Scope.of([BRIEF])
    assert json.loads(session.to_json())["scope"] == {"docs": [BRIEF], "kinds": []}
    assert {c.doc_id for c in restored.ask(FOLLOW_UP).citations} == {BRIEF}
    session.reset()
    assert session.scope == Scope.of([BRIEF])


def test_an_unknown_document_in_a_scope_is_an_input_error(assistant: Assistant) -> None:
    with pytest.raises(InputError) as caught:
        assistant.ask(TRADE, scope=Scope.of(["power-of-siberea"]))
    assert "Did you mean 'power-of-siberia'?" in caught.value.message
    assert caught.value.hint is not None and SIBERIA in caught.value.hint


# --- the command line ------------------------------------------------------------------------


def test_ask_with_doc_and_kind_prints_the_scope_in_json(default_index: Path) -> None:
    result = run(
        ["ask", TRADE, "--doc", "russia-china-trade", "--kind", "article", "--json"], default_index
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scope"] == {"docs": ["russia-china-trade"], "kinds": ["article"]}
    assert {c["doc_id"] for c in data["citations"]} <= {
        "russia-china-trade",
        "sino-russian-relations",
    }
    assert {p["doc_id"] for p in data["passages"]} <= {
        "russia-china-trade",
        "sino-russian-relations",
    }


def test_chat_with_a_doc_keeps_it_for_follow_ups(default_index: Path) -> None:
    lines = f"{TRADE}\n{FOLLOW_UP}\n/new\n{FOLLOW_UP}\n/quit\n"
    result = run(["chat", "--json", "--doc", BRIEF], default_index, input=lines)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == 3
    for data in answers:
        assert data["scope"] == {"docs": [BRIEF], "kinds": []}
        assert data["citations"] and {c["doc_id"] for c in data["citations"]} == {BRIEF}


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["ask", TRADE, "--doc", "nope"], "No document with id 'nope' in the index."),
        (["chat", "--doc", "nope"], "No document with id 'nope' in the index."),
        (["ask", TRADE, "--kind", "essay"], "'essay' is not one of 'article', 'source'"),
    ],
)
def test_a_bad_scope_on_the_command_line_exits_2_naming_the_valid_ids(
    default_index: Path, args: list[str], shown: str
) -> None:
    result = run(args, default_index, input="")
    assert result.exit_code == 2, result.output
    assert shown in result.output and "Traceback" not in result.output
    if "--doc" in args:
        assert "Valid document ids: " in result.output and SIBERIA in result.output
