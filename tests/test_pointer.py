"""The generation pointer: a CURRENT file for the embedded store, a record on a Chroma server
(started by the `chroma_server` fixture) that readers on every machine follow."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.service import Assistant
from assistant.store import ChromaIndex, FilePointer, IndexStore
from tests.test_chroma_server import chroma_server  # noqa: F401  (the fixture)


def test_the_file_pointer_names_only_a_complete_generation(tmp_path: Path) -> None:
    pointer = FilePointer(tmp_path)
    assert pointer.current() is None and not pointer.exists()
    before = pointer.change_token(None)
    pointer.set("gen-a", {"format": 2})
    assert (tmp_path / "CURRENT").read_text() == "gen-a\n"
    assert pointer.current() == "gen-a"
    assert pointer.change_token(None) != before
    assert not pointer.exists()  # its index.json is not there
    (tmp_path / "gen-a").mkdir()
    (tmp_path / "gen-a" / "index.json").write_text(json.dumps({"format": 2}))
    assert pointer.exists() and pointer.info("gen-a") == {"format": 2}
    (tmp_path / "CURRENT").write_text("../elsewhere\n")  # a path, never a generation's name
    assert pointer.current() is None


def test_an_update_on_one_machine_changes_the_token_readers_elsewhere_see(
    chroma_server: str,  # noqa: F811
    small_corpus: Path,
    tmp_path: Path,
    embedder: Embedder,
) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "w", chroma_url=chroma_server)
    writer = Assistant(settings, embedder)
    writer.index(rebuild=True)
    elsewhere = settings.model_copy(update={"index_dir": tmp_path / "r"})
    before = IndexStore(elsewhere).change_token()
    path = small_corpus / "baikal.md"
    path.write_text(path.read_text().replace("100,000 seals", "80,000 seals"))
    assert writer.index().updated == ["baikal"]
    after = IndexStore(elsewhere).change_token()
    assert after[0] == before[0] and after != before  # same generation, changed in place


def test_a_rebuild_drops_the_server_collections_of_older_generations(
    chroma_server: str,  # noqa: F811
    small_corpus: Path,
    tmp_path: Path,
    embedder: Embedder,
) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "i", chroma_url=chroma_server)
    writer = Assistant(settings, embedder)
    built = []
    for _ in range(3):
        writer.index(rebuild=True)
        built.append(writer.store.current_generation())
    client = ChromaIndex.remote(chroma_server).client
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    on_server = {
        n[len("assistant-") :].rsplit("-", 1)[0] for n in names if n.startswith("assistant-gen-")
    }
    assert on_server == set(built[1:])  # the live one and the one before it
    assert sorted(p.name for p in writer.store.root.glob("gen-*")) == sorted(built[1:])
