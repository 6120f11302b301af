"""Conversations the web app keeps on disk (ui.sessions): read back after a restart, bad keys
and bad files opening a fresh conversation, the store's bounds, two tabs on one key, passage
ids that stay put across re-indexing, and citations checked against the index as it is now."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, ChatSession
from ui import markup
from ui.handlers import Handlers, WebSession
from ui.sessions import FOLDER, SessionStore, as_key

DEPTH = "How deep is Lake Baikal?"
SEALS = "How many seals live in Lake Baikal?"


@pytest.fixture
def indexed(small_assistant: Assistant) -> Assistant:
    small_assistant.index()
    return small_assistant


def ask(handlers: Handlers, question: str, state: WebSession) -> tuple[list[dict], str]:
    """One question through the chat's own callback, as the page asks it: the final view."""
    *_, (history, panel, _, state_after) = handlers.respond(question, [], state)
    assert state_after is state
    return history, panel


def plain(markup_text: str) -> str:
    """The text a page shows for some markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup_text))


def chat_with(assistant: Assistant, *questions: str) -> ChatSession:
    chat = ChatSession(assistant)
    for q in questions:
        chat.ask(q)
    return chat


def test_a_conversation_comes_back_after_a_restart(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    _, _, state, key = handlers.restore(None)
    assert as_key(key) == key and state.key == key
    ask(handlers, DEPTH, state)
    history, panel = ask(handlers, SEALS, state)
    assert "1,642 metres" in plain(panel) and "100,000 seals" in plain(panel)
    assert (indexed.settings.index_dir / FOLDER / f"{key}.json").exists()

    # A new server process on the same index: a new store object, the same folder.
    again = Handlers(indexed)
    assert again.store.secret() == handlers.store.secret()  # the browser's key still reads
    shown, restored_panel, restored, same_key = again.restore(key)
    assert same_key == key and restored.revision == state.revision == 2
    assert shown == history  # the chat exactly as it was shown
    assert restored_panel == panel  # every citation in place, highlighted as before
    assert [t.answer.to_dict(include_passages=False) for t in restored.chat.turns] == [
        t.answer.to_dict(include_passages=False) for t in state.chat.turns
    ]
    # It goes on from there: a follow-up is read against the restored turns, and kept.
    history, panel = ask(again, "And what fish does it hold?", restored)
    assert restored.chat.turns[-1].standalone != "And what fish does it hold?"
    assert "omul" in plain(panel)
    assert len(Handlers(indexed).restore(key)[0]) == 6


def test_whatever_the_browser_holds_it_gets_a_conversation(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    held: list[object] = [None, 42, True, ["x"], {"key": "x"}, "", "../../../etc/passwd"]
    for value in [*held, "x" * 1_000_000, "A" * 21, "A" * 21 + "/"]:
        shown, panel, state, key = handlers.restore(value)
        assert shown == [] and state.chat.turns == [] and "Sources of each answer" in panel
        assert as_key(key) == key != value and state.key == key, str(value)[:40]
    assert not (indexed.settings.index_dir / FOLDER).exists()  # nothing read, nothing made


def corruptions(good: str) -> dict[str, bytes]:
    """A good conversation file, broken in the ways a file on disk can be."""
    record = json.loads(good)

    def edited(change: Callable[[dict[str, Any]], object]) -> bytes:
        data = json.loads(good)
        change(data)
        return json.dumps(data).encode()

    def set_in_answer(name: str, value: object) -> Callable[[dict[str, Any]], object]:
        return lambda d: d["chat"]["turns"][0]["answer"].__setitem__(name, value)

    assert record["chat"]["turns"][0]["answer"]["citations"]
    return {
        "empty": b"",
        "not utf-8": b"\xff\xfe\x00garbage",
        "cut short": good.encode()[: len(good) // 2],
        "a list": b"[]",
        "another format": edited(lambda d: d.__setitem__("format", 99)),
        "revision as text": edited(lambda d: d.__setitem__("revision", "2")),
        "no turns": edited(lambda d: d["chat"].__setitem__("turns", "many")),
        "question a number": edited(lambda d: d["chat"]["turns"][0].__setitem__("question", 42)),
        "answer missing": edited(lambda d: d["chat"]["turns"][0].pop("answer")),
        "citations an object": edited(set_in_answer("citations", {"n": 1})),
        "quote a list": edited(
            lambda d: d["chat"]["turns"][0]["answer"]["citations"][0].__setitem__("quote", ["x"])
        ),
        "sentence cites text": edited(
            set_in_answer("sentences", [{"text": "x", "citations": ["one"]}])
        ),
        "too large": good.encode() + b" " * 600_000,  # more than the store ever writes
    }


def test_a_file_that_does_not_read_opens_a_fresh_conversation(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    _, _, state, key = handlers.restore(None)
    ask(handlers, DEPTH, state)
    path = handlers.store.path(key)
    good = path.read_text(encoding="utf-8")
    assert handlers.store.load(indexed, key) is not None
    for name, data in corruptions(good).items():
        path.write_bytes(data)
        assert handlers.store.load(indexed, key) is None, name
        shown, panel, fresh, same_key = Handlers(indexed).restore(key)
        assert (shown, fresh.chat.turns, same_key) == ([], [], key), name
        assert "Sources of each answer" in panel
    # The next answer writes a good file over the bad one.
    ask(handlers, SEALS, fresh)
    assert len(Handlers(indexed).restore(key)[2].chat.turns) == 1


def test_a_file_edited_to_carry_markup_shows_it_as_text(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    _, _, state, key = handlers.restore(None)
    ask(handlers, DEPTH, state)
    path = handlers.store.path(key)
    data = json.loads(path.read_text(encoding="utf-8"))
    turn = data["chat"]["turns"][0]
    turn["question"] = '<img src=x onerror="alert(1)">Deep?'
    turn["answer"]["answer"] = "<script>alert(1)</script>"
    turn["answer"]["sentences"][0]["text"] = "<script>alert(2)</script>"
    turn["answer"]["citations"][0]["url"] = "javascript:alert(3)"
    data["chat"]["id"] = "../../escape"
    path.write_text(json.dumps(data), encoding="utf-8")
    shown, panel, restored, _ = Handlers(indexed).restore(key)
    page = json.dumps(shown) + panel
    for planted in ("<img", "<script", "javascript:"):
        assert planted not in page, planted
    assert "/" not in restored.chat.id  # it names the export's file


def test_the_store_keeps_the_most_recently_used(indexed: Assistant, tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "kept", kept=3)
    chat = chat_with(indexed, DEPTH)
    keys = []
    for i in range(4):
        key, _ = store.save(f"{i:022d}", chat, 0)
        os.utime(store.path(key), (1000 + i, 1000 + i))  # written one after another
        keys.append(key)
    assert store.keys() == keys[:0:-1]  # the oldest one went
    assert store.load(indexed, keys[1]) is not None  # reading it makes it the latest used
    key, _ = store.save("9" * 22, chat, 0)
    assert set(store.keys()) == {keys[1], keys[3], key}
    assert not store.path(keys[2]).exists()


def test_a_long_conversation_keeps_its_latest_turns(indexed: Assistant, tmp_path: Path) -> None:
    chat = chat_with(indexed, DEPTH, SEALS, "What fish does Lake Baikal hold?")
    one_turn = len(json.dumps(chat.turns[-1].to_dict(), ensure_ascii=False).encode())
    store = SessionStore(tmp_path / "small", max_bytes=one_turn * 2 + 200)
    key, _ = store.save("k" * 22, chat, 0)
    assert store.path(key).stat().st_size <= store.max_bytes
    stored = store.load(indexed, key)
    assert stored is not None
    kept = [t.question for t in stored.chat.turns]
    assert 1 <= len(kept) < 3 and kept[-1] == "What fish does Lake Baikal hold?"


def test_two_tabs_on_one_key_never_overwrite_each_other(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    _, _, first, key = handlers.restore(None)
    ask(handlers, DEPTH, first)
    _, _, tab_a, _ = handlers.restore(key)  # two tabs of the browser, opened on it
    _, _, tab_b, _ = handlers.restore(key)
    ask(handlers, SEALS, tab_a)
    assert tab_a.key == key
    ask(handlers, "What fish does Lake Baikal hold?", tab_b)
    assert tab_b.key != key and as_key(tab_b.key)  # behind the file: written under its own key
    assert handlers.remember(tab_b) == tab_b.key  # which the browser then keeps
    on_disk = {
        k: [t.question for t in Handlers(indexed).restore(k)[2].chat.turns]
        for k in (key, tab_b.key)
    }
    assert on_disk == {
        key: [DEPTH, SEALS],
        tab_b.key: [DEPTH, "What fish does Lake Baikal hold?"],
    }


def test_api_clients_and_new_conversations(indexed: Assistant) -> None:
    handlers = Handlers(indexed)
    *_, (_, _, _, api_state) = handlers.respond(DEPTH, [], None)  # no browser: nothing kept
    assert api_state.key is None and not (indexed.settings.index_dir / FOLDER).exists()
    _, _, state, key = handlers.restore(None)
    ask(handlers, DEPTH, state)
    _, _, fresh = handlers.new_conversation(state)
    assert fresh.key is not None and fresh.key != key  # the page forgets the old one
    assert Handlers(indexed).restore(fresh.key)[0] == []
    assert len(Handlers(indexed).restore(key)[0]) == 2  # which is still on disk


def passages_of(assistant: Assistant, doc_id: str) -> dict[str, tuple[int, int]]:
    return {p.id: (p.start, p.end) for p in assistant.passages() if p.doc_id == doc_id}


def test_passage_ids_stay_put_when_their_text_does(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    small_assistant.index()
    baikal, tea = passages_of(small_assistant, "baikal"), passages_of(small_assistant, "tea")
    assert small_assistant.index().unchanged == ["baikal", "silk", "tea"]
    assert passages_of(small_assistant, "baikal") == baikal
    small_assistant.index(rebuild=True)  # a new generation, built from scratch
    assert passages_of(small_assistant, "baikal") == baikal
    path = small_corpus / "tea.txt"
    path.write_text(path.read_text().replace("sixteen months", "a year and four months"))
    assert small_assistant.index().updated == ["tea"]
    assert passages_of(small_assistant, "baikal") == baikal  # another document's edit
    edited = passages_of(small_assistant, "tea")
    assert len(set(edited) - set(tea)) == 1 and len(set(tea) - set(edited)) == 1


def test_a_citation_whose_source_changed_is_marked_so(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    small_assistant.index()
    handlers = Handlers(small_assistant)
    _, _, state, key = handlers.restore(None)
    ask(handlers, SEALS, state)
    cited = state.chat.turns[0].answer.citations[0]
    assert "100,000 seals" in cited.quote

    def reopened() -> str:
        small_assistant.index()
        shown, panel, _, _ = Handlers(small_assistant).restore(key)
        assert f'href="#{markup.anchor(0, cited.n)}"' in shown[1]["content"]
        assert f'id="{markup.anchor(0, cited.n)}"' in panel  # the marker still finds its card
        return panel

    path = small_corpus / "baikal.md"
    original = path.read_text()
    (small_corpus / "tea.txt").write_text("The Tea Road ran from China to Russia.\n")
    panel = reopened()  # another document changed: the citation still holds
    assert markup.STALE not in panel and '<mark class="cited">' in panel

    # Text added above it: the passage is unchanged (same id) but no longer where it was.
    path.write_text(original.replace("1,642 metres.", "1,642 metres. Its water is very clear."))
    panel = reopened()
    assert cited.passage_id in {p.id for p in small_assistant.passages()}
    assert markup.STALE in panel and "<mark" not in panel
    assert cited.quote in plain(panel)  # what the answer quoted, shown as that

    # The cited sentence itself edited: its passage is gone.
    path.write_text(original.replace("100,000 seals", "90,000 seals"))
    panel = reopened()
    assert cited.passage_id not in {p.id for p in small_assistant.passages()}
    assert markup.STALE in panel and "<mark" not in panel

    path.write_text(original)  # put back as it was: the citation holds again
    assert markup.STALE not in reopened()
