"""The store on a real Chroma server: `chroma run` on 127.0.0.1, shared by separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.config import Settings
from assistant.embedding import Embedder
from assistant.service import Assistant
from tests.helpers import cli_command, free_port, stop, wait_until_up

CHROMA = Path(sys.executable).parent / "chroma"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMA.exists():
        if os.environ.get("ASSISTANT_REQUIRE_CHROMA_SERVER") == "1":
            pytest.fail(f"{CHROMA} is missing and ASSISTANT_REQUIRE_CHROMA_SERVER=1")
        pytest.skip("the chroma command is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(CHROMA),
            "run",
            "--path",
            str(folder / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/api/v2/heartbeat", proc, 60)
    yield url
    stop(proc)


def ask_in_process(corpus: Path, index: Path, url: str, question: str) -> dict:
    """`assistant ask --json` in a separate process, with its own (empty) local index folder."""
    out = subprocess.run(
        cli_command(corpus, index, "--chroma-url", url, "ask", question, "--json"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_index_through_the_server_and_answer_from_two_processes(
    chroma_server: str, small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    writer = Assistant(
        Settings(corpus_dir=small_corpus, index_dir=tmp_path / "writer", chroma_url=chroma_server),
        embedder,
    )
    report = writer.index()
    assert sorted(report.added) == ["baikal", "silk", "tea"]
    assert not (
        tmp_path / "writer" / writer.store.current_generation() / "chroma"
    ).exists()  # vectors live on the server

    first = ask_in_process(
        small_corpus, tmp_path / "reader-1", chroma_server, "How deep is Lake Baikal?"
    )
    second = ask_in_process(
        small_corpus, tmp_path / "reader-2", chroma_server, "How deep is Lake Baikal?"
    )
    assert first["citations"] == second["citations"]
    assert "1,642 metres" in first["citations"][0]["quote"]
    assert not (tmp_path / "reader-1" / "CURRENT").exists()  # nothing was built locally

    # An edit indexed by the writer reaches a reader in another process.
    path = small_corpus / "baikal.md"
    path.write_text(path.read_text().replace("1,642 metres", "1,700 metres (a test edit)"))
    assert writer.index().updated == ["baikal"]
    third = ask_in_process(
        small_corpus, tmp_path / "reader-3", chroma_server, "How deep is Lake Baikal?"
    )
    assert "1,700 metres" in third["citations"][0]["quote"]


def test_rebuild_on_the_server_switches_every_reader(
    chroma_server: str, small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "w", chroma_url=chroma_server)
    writer = Assistant(settings, embedder)
    writer.index()
    old = writer.store.current_generation()
    writer.index(rebuild=True)
    new = writer.store.current_generation()
    assert new != old
    reader = Assistant(settings.model_copy(update={"index_dir": tmp_path / "r"}), embedder)
    assert reader.store.current_generation() == new
    assert reader.ask("What did the Tea Road carry?").citations


def test_unreachable_server_is_a_clear_error_with_exit_2(
    small_corpus: Path, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        cli,
        [
            "--corpus",
            str(small_corpus),
            "--index",
            str(tmp_path / "i"),
            "--chroma-url",
            url,
            "ask",
            "How deep is Lake Baikal?",
        ],
    )
    assert result.exit_code == 2
    assert (
        f"Cannot reach the Chroma server at {url}" in result.output
        and "Traceback" not in result.output
    )


def test_a_second_writer_machine_updates_incrementally(
    chroma_server: str, small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    first = Assistant(
        Settings(corpus_dir=small_corpus, index_dir=tmp_path / "a", chroma_url=chroma_server),
        embedder,
    )
    first.index(rebuild=True)
    generation = first.store.current_generation()
    other = Assistant(
        Settings(corpus_dir=small_corpus, index_dir=tmp_path / "b", chroma_url=chroma_server),
        embedder,
    )
    report = other.index()
    assert other.store.current_generation() == generation
    assert not report.added and sorted(report.unchanged) == ["baikal", "silk", "tea"]


def test_switching_between_embedded_and_server_keeps_both_indexes(
    chroma_server: str, small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    """Embedded, then a server, then embedded again, all on one index folder: each mode keeps
    its own index, and answers keep working at every step."""
    folder = tmp_path / "index"
    question = "How deep is Lake Baikal?"
    embedded = Settings(corpus_dir=small_corpus, index_dir=folder)
    local = Assistant(embedded, embedder)
    local.index()
    local_generation = local.store.current_generation()
    assert local_generation and "1,642 metres" in local.ask(question).citations[0].quote
    pointer = (folder / "CURRENT").read_text()

    served = Assistant(embedded.model_copy(update={"chroma_url": chroma_server}), embedder)
    served.index(rebuild=True)
    assert served.store.current_generation() != local_generation
    assert "1,642 metres" in served.ask(question).citations[0].quote
    # The embedded index is untouched: its pointer and its Chroma data are where they were.
    assert (folder / "CURRENT").read_text() == pointer
    assert (folder / local_generation / "chroma").is_dir()

    again = Assistant(embedded, embedder)
    assert again.store.current_generation() == local_generation
    assert "1,642 metres" in again.ask(question).citations[0].quote
    assert again.index().unchanged == ["baikal", "silk", "tea"]


def test_two_servers_on_one_index_folder_keep_their_own_pointers(
    chroma_server: str, small_corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    """A second server (another address) on the same folder neither deletes nor repoints the
    first one's local state."""
    folder = tmp_path / "index"
    first = Assistant(
        Settings(corpus_dir=small_corpus, index_dir=folder, chroma_url=chroma_server), embedder
    )
    first.index(rebuild=True)
    other_url = chroma_server.replace("127.0.0.1", "localhost")
    second = Assistant(
        Settings(corpus_dir=small_corpus, index_dir=folder, chroma_url=other_url), embedder
    )
    assert second.store.root != first.store.root
    assert first.store.root.is_dir() and first.store.root.parent == second.store.root.parent
