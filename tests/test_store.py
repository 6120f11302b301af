import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import assistant.corpus.scanning
from assistant.config import ChunkSettings, Settings
from assistant.corpus import LOADER_VERSION
from assistant.embedding import Embedder
from assistant.errors import IndexBusyError, IndexStateError, InputError
from assistant.service import Assistant
from assistant.store import IndexWriter


def passage_ids(a: Assistant, doc_id: str) -> list[str]:
    return list(a.snapshot().docs[doc_id].passage_ids)


def test_first_run_indexes_everything(small_assistant: Assistant) -> None:
    report = small_assistant.index()
    assert sorted(report.added) == ["baikal", "silk", "tea"]
    snap = small_assistant.snapshot()
    assert report.passages == len(snap.passages) > 0
    for p in snap.passages:
        assert snap.docs[p.doc_id].text[p.start : p.end] == p.text


def test_second_run_changes_nothing_and_skips_the_model(small_settings: Settings) -> None:
    Assistant(small_settings, Embedder(small_settings.embed_model)).index()
    fresh = Assistant(small_settings, Embedder(small_settings.embed_model))
    report = fresh.index()
    assert not report.changed and sorted(report.unchanged) == ["baikal", "silk", "tea"]
    assert fresh.embedder._model is None and fresh.embedder._onnx is None  # never loaded


def test_an_index_read_by_older_loaders_is_read_again(
    small_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the way files are read or split changes (LOADER_VERSION), the next run embeds
    every document again, though no file changed."""
    import assistant.corpus.scanning
    import assistant.store.index
    import assistant.store.sync

    older = LOADER_VERSION - 1
    with monkeypatch.context() as patch:
        for module in (assistant.corpus.scanning, assistant.store.index, assistant.store.sync):
            patch.setattr(module, "LOADER_VERSION", older)
        small_assistant.index()
        assert small_assistant.store.is_up_to_date()
    assert not small_assistant.store.is_up_to_date()
    report = small_assistant.index()
    assert sorted(report.updated) == ["baikal", "silk", "tea"] and report.embedded > 0
    assert small_assistant.store.is_up_to_date()


def test_touched_but_identical_files_are_not_re_embedded(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    small_assistant.index()
    before = passage_ids(small_assistant, "tea")
    (small_corpus / "tea.txt").write_text((small_corpus / "tea.txt").read_text())
    report = small_assistant.index()
    assert report.embedded == 0 and "tea" in report.unchanged
    assert passage_ids(small_assistant, "tea") == before


def test_edited_file_replaces_only_its_changed_passages(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    small_assistant.index()
    before = passage_ids(small_assistant, "baikal")
    path = small_corpus / "baikal.md"
    path.write_text(path.read_text().replace("100,000 seals", "80,000 seals"))
    report = small_assistant.index()
    assert report.updated == ["baikal"] and sorted(report.unchanged) == ["silk", "tea"]
    after = passage_ids(small_assistant, "baikal")
    assert after[0] == before[0]  # the unchanged first passage keeps its id
    assert before[1] not in after
    texts = " ".join(small_assistant.snapshot().by_id[i].text for i in after)
    assert "80,000 seals" in texts and "100,000" not in texts
    assert small_assistant.snapshot().chroma.collection("passages").count() == len(
        small_assistant.snapshot().passages
    )


def test_a_passage_id_from_before_an_edit_says_its_document_changed(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    small_assistant.index()
    old = passage_ids(small_assistant, "baikal")[1]
    path = small_corpus / "baikal.md"
    path.write_text(path.read_text().replace("100,000 seals", "80,000 seals"))
    small_assistant.index()
    with pytest.raises(InputError) as gone:
        small_assistant.passage(old)
    assert "Its document, 'Lake Baikal' (baikal), is there" in gone.value.message
    assert "its text has changed" in gone.value.message
    with pytest.raises(InputError, match="Did you mean") as typo:  # a typo is still a typo
        small_assistant.passage(passage_ids(small_assistant, "baikal")[0][:-1])
    assert "changed" not in typo.value.message


def test_deleted_file_disappears(small_assistant: Assistant, small_corpus: Path) -> None:
    small_assistant.index()
    (small_corpus / "silk.html").unlink()
    report = small_assistant.index()
    assert report.removed == ["silk"]
    snap = small_assistant.snapshot()
    assert "silk" not in snap.docs and not any(p.doc_id == "silk" for p in snap.passages)
    assert snap.chroma.collection("passages").count() == len(snap.passages)


def test_unreadable_files_are_skipped_and_the_rest_index(
    small_assistant: Assistant, small_corpus: Path
) -> None:
    (small_corpus / "bad.txt").write_bytes(b"\x00\x00\x00")
    (small_corpus / "empty.md").write_text("")
    report = small_assistant.index()
    assert dict(report.skipped).keys() == {"bad.txt", "empty.md"}
    assert sorted(report.added) == ["baikal", "silk", "tea"]


def test_index_records_its_settings_and_versions(small_assistant: Assistant) -> None:
    small_assistant.index()
    store = small_assistant.store
    info = json.loads((store.root / store.current_generation() / "index.json").read_text())
    assert info["settings"]["embed_model"] == small_assistant.settings.embed_model
    assert info["settings"]["chunk"]["max_tokens"] == 200
    assert set(info["versions"]) >= {"chromadb", "llama-index-core", "sentence-transformers"}


def test_other_settings_are_refused_with_the_rebuild_hint(
    small_assistant: Assistant, small_settings: Settings, embedder: Embedder
) -> None:
    small_assistant.index()
    other = Assistant(
        small_settings.model_copy(update={"chunk": ChunkSettings(max_tokens=120)}), embedder
    )
    with pytest.raises(IndexStateError) as err:
        other.snapshot()
    assert "chunk.max_tokens: index has 200, settings say 120" in err.value.message
    assert "assistant index --rebuild" in (err.value.hint or "")
    other.index(rebuild=True)
    assert other.snapshot().passages


def test_unreadable_index_file_names_the_rebuild(small_assistant: Assistant) -> None:
    small_assistant.index()
    store = small_assistant.store
    (store.root / store.current_generation() / "index.json").write_text("{not json")
    with pytest.raises(IndexStateError, match="unreadable") as err:
        Assistant(small_assistant.settings, small_assistant.embedder).snapshot()
    assert "assistant index --rebuild" in (err.value.hint or "")
    small_assistant.index(rebuild=True)
    assert Assistant(small_assistant.settings, small_assistant.embedder).snapshot().passages


def test_corrupted_vector_store_names_the_rebuild(small_assistant: Assistant) -> None:
    small_assistant.index()
    store = small_assistant.store
    sqlite = store.root / store.current_generation() / "chroma" / "chroma.sqlite3"
    sqlite.write_bytes(b"garbage" * 100)
    with pytest.raises(IndexStateError) as err:
        Assistant(small_assistant.settings, small_assistant.embedder).snapshot()
    assert "assistant index --rebuild" in (err.value.hint or "")


def test_missing_index_says_how_to_build_it(small_settings: Settings, embedder: Embedder) -> None:
    with pytest.raises(IndexStateError, match="no index") as err:
        Assistant(small_settings, embedder).snapshot()
    assert "assistant index" in (err.value.hint or "")


def test_rebuild_switches_generations_only_when_complete(small_assistant: Assistant) -> None:
    small_assistant.index()
    store = small_assistant.store
    old = store.current_generation()
    old_ids = sorted(p.id for p in small_assistant.snapshot().passages)
    small_assistant.index(rebuild=True)
    new = store.current_generation()
    assert new != old
    assert sorted(p.id for p in small_assistant.snapshot().passages) == old_ids
    assert not list(store.root.glob("*.tmp"))


def test_failed_rebuild_keeps_the_old_index(
    small_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_assistant.index()
    store = small_assistant.store
    old = store.current_generation()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(IndexWriter, "_embed_and_write", boom)
    with pytest.raises(RuntimeError):
        small_assistant.index(rebuild=True)
    assert store.current_generation() == old
    assert not list(store.root.glob("*.tmp"))
    assert small_assistant.snapshot().passages


def test_a_second_writer_is_refused_with_the_holder_named(small_assistant: Assistant) -> None:
    small_assistant.index()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from assistant.fsutil import FileLock;"
            "lock = FileLock(Path(sys.argv[1]) / '.lock', 'assistant index'); lock.acquire();"
            "print('locked', flush=True); sys.stdin.read()",  # holds the lock until killed
            str(small_assistant.store.root),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusyError) as err:
            small_assistant.index()
        assert f"pid {holder.pid} (assistant index)" in err.value.message
        assert small_assistant.snapshot().passages  # readers still work
    finally:
        holder.kill()
        holder.wait()
    small_assistant.index()  # the lock died with its holder


def test_orphans_of_an_interrupted_write_are_ignored_then_removed(
    small_assistant: Assistant,
) -> None:
    small_assistant.index()
    snap = small_assistant.snapshot()
    # Simulate a writer killed after deleting the record but before deleting the passages.
    snap.chroma.collection("documents").delete(ids=["tea"])
    state = small_assistant.store.root / small_assistant.store.current_generation() / "state.json"
    data = json.loads(state.read_text())
    data["clean"] = False
    state.write_text(json.dumps(data))
    reader = Assistant(small_assistant.settings, small_assistant.embedder)
    assert "tea" not in reader.snapshot().docs
    assert not any(p.doc_id == "tea" for p in reader.snapshot().passages)
    report = small_assistant.index()
    assert report.added == ["tea"]
    snap = Assistant(small_assistant.settings, small_assistant.embedder).snapshot()
    assert snap.chroma.collection("passages").count() == len(snap.passages)
    assert "tea" in snap.docs


def test_a_file_edited_or_added_while_the_corpus_is_read_is_indexed_by_the_next_run(
    small_assistant: Assistant, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit landing after a run read a file must not be recorded as indexed: the next
    run reads the file again, and until then the index is not up to date."""
    import assistant.store.sync

    small_assistant.index()
    real_scan = assistant.store.sync.scan

    def scan_then_edit(corpus_dir: Path):  # type: ignore[no-untyped-def]
        corpus = real_scan(corpus_dir)
        path = small_corpus / "baikal.md"
        path.write_text(path.read_text().replace("100,000 seals", "80,000 seals"))
        (small_corpus / "okapi.md").write_text("# Okapi\n\nThe okapi lives in the Ituri forest.\n")
        return corpus

    with monkeypatch.context() as patch:
        patch.setattr(assistant.store.sync, "scan", scan_then_edit)
        small_assistant.index(rebuild=True)
    assert not small_assistant.store.is_up_to_date()
    report = small_assistant.index()
    assert report.updated == ["baikal"] and report.added == ["okapi"]
    snap = small_assistant.snapshot()
    texts = " ".join(snap.by_id[i].text for i in snap.docs["baikal"].passage_ids)
    assert "80,000 seals" in texts and "100,000" not in texts
    assert small_assistant.store.is_up_to_date()


def unreadable(path: Path) -> str:
    raise AssertionError(f"{path} was read")


def test_files_with_new_times_but_the_same_bytes_are_up_to_date(
    small_assistant: Assistant, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corpus copied without its times (cp -r) or touched has not changed; a file of the
    same size and time with other bytes is not looked at, one with a new time is read."""
    small_assistant.index()
    for f in small_corpus.iterdir():
        os.utime(f, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert small_assistant.store.is_up_to_date()
    # `index` records the new times, so that later checks need not read the files again.
    assert small_assistant.index().embedded == 0
    with monkeypatch.context() as patch:
        patch.setattr(assistant.corpus.scanning, "file_digest", unreadable)
        assert small_assistant.store.is_up_to_date()
    tea = small_corpus / "tea.txt"
    tea.write_text(tea.read_text().replace("a", "o", 1))  # same size, new bytes, new time
    assert not small_assistant.store.is_up_to_date()
    small_assistant.index()
    assert small_assistant.store.is_up_to_date()
