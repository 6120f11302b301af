"""Writers stopped at each named crash point (assistant/faults.py), by an exception or by a
kill, leave an index that the next plain command answers from, and that the next plain
`assistant index` brings back to exactly the corpus: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant import faults
from assistant.cli import cli
from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import scan
from assistant.embedding import Embedder
from assistant.faults import KILL_STATUS, FaultInjected
from assistant.service import Assistant
from assistant.store.chroma import DOCUMENTS, PASSAGES, SENTENCES
from tests.conftest import DATA
from tests.helpers import cli_command

TRADE = "How large was bilateral trade between Russia and China in 2023?"
EXTRA = DATA / "faults" / "pipelines.md"

# (what the interrupted command does, the point it stops at). `replace.NAME` is the moment
# between writing a file's new text to its temporary file and renaming it into place; `@2`
# is the second time a point is reached (state.json is written when a write starts and when
# it ends).
CASES = [
    ("add", "replace.pipelines.md"),  # the copy into the corpus
    ("add", "replace.sources.toml"),  # the manifest
    ("add", "replace.state.json@1"),  # the state marking the write as started
    ("add", "store.passages-written"),
    ("add", "store.sentences-written"),
    ("add", "store.document-written"),
    ("add", "replace.state.json@2"),  # the state marking it as finished
    ("edit", "store.record-deleted"),  # an edited document: old record gone, old passages not
    ("rebuild", "store.generation-built"),
    ("rebuild", "replace.CURRENT"),
    ("rebuild", "store.generation-switched"),
]


def command(corpus: Path, action: str) -> list[str]:
    """The `assistant` arguments of an action, preparing the corpus for it."""
    if action == "add":
        return ["add", str(EXTRA)]
    if action == "edit":
        tea = corpus / "tea.txt"
        tea.write_text(tea.read_text() + "\n\nThe route declined after the railway opened.\n")
        return ["index"]
    return ["index", "--rebuild"]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The tiny documents plus a trade passage, indexed once; each test works on a copy."""
    root = tmp_path_factory.mktemp("faults-template")
    corpus = root / "corpus"
    corpus.mkdir()
    for f in [*DATA.iterdir(), DATA / "faults" / "trade.md"]:
        if f.is_file():
            shutil.copy2(f, corpus / f.name)
    Assistant(Settings(corpus_dir=corpus, index_dir=root / "index"), embedder).index()
    return root


@pytest.fixture
def workspace(template: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(template / "corpus", tmp_path / "corpus")
    shutil.copytree(template / "index", tmp_path / "index")
    return tmp_path / "corpus", tmp_path / "index"


def invoke(corpus: Path, index: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--corpus", str(corpus), "--index", str(index), *args])


def assert_consistent(corpus: Path, index: Path, embedder: Embedder, complete: bool) -> None:
    """Every passage once, every record with its passages; with `complete`, the store holds
    exactly the corpus and no orphans."""
    snap = Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder).snapshot()
    ids = [p.id for p in snap.passages]
    assert len(ids) == len(set(ids)), "a passage appears twice"
    for doc in snap.docs.values():
        assert doc.passage_ids, f"{doc.id} has no passages"
        for pid in doc.passage_ids:
            p = snap.by_id[pid]
            assert doc.text[p.start : p.end] == p.text
    stored = {d.id: d.content_hash for d in snap.docs.values()}
    on_disk = {d.id: d.content_hash for d in scan(corpus).documents}
    if not complete:
        assert set(stored) <= set(on_disk)
        return
    assert stored == on_disk, "the store does not hold exactly the corpus"
    for name, expected in (
        (PASSAGES, len(snap.passages)),
        (SENTENCES, snap.sentence_count),
        (DOCUMENTS, len(snap.docs)),
    ):
        records = snap.chroma.collection(name).get(include=[])["ids"]
        duplicates = [r for r, n in Counter(records).items() if n > 1]
        assert not duplicates, f"{name}: {duplicates[:3]} twice"
        assert len(records) == expected, f"{name}: {len(records)} records, {expected} expected"


def recovers(corpus: Path, index: Path, embedder: Embedder) -> None:
    """The next plain commands: a question answered from a consistent index, then an index run
    after which the store is exactly the corpus."""
    ask = invoke(corpus, index, "ask", TRADE, "--json")
    assert ask.exit_code == 0, ask.output
    assert "$240 billion" in json.loads(ask.stdout)["citations"][0]["quote"]
    assert_consistent(corpus, index, embedder, complete=False)
    again = invoke(corpus, index, "index")
    assert again.exit_code == 0, again.output
    assert_consistent(corpus, index, embedder, complete=True)
    assert not list(index.glob("gen-*.tmp"))
    answer = invoke(corpus, index, "ask", TRADE, "--json")
    assert "$240 billion" in json.loads(answer.stdout)["citations"][0]["quote"]


@pytest.mark.parametrize(("action", "point"), CASES)
def test_a_write_that_raises_at_a_crash_point_recovers(
    workspace: tuple[Path, Path],
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    action: str,
    point: str,
) -> None:
    corpus, index = workspace
    args = command(corpus, action)
    monkeypatch.setattr(faults, "_reached", Counter())
    monkeypatch.setenv(faults.ENV, f"{point}:raise")
    failed = invoke(corpus, index, *args)
    assert isinstance(failed.exception, FaultInjected), failed.output  # it stopped right there
    assert str(failed.exception) == f"fault injected at {point.partition('@')[0]}"
    monkeypatch.delenv(faults.ENV)
    recovers(corpus, index, embedder)


@pytest.mark.slow
@pytest.mark.parametrize(("action", "point"), CASES)
def test_a_writer_killed_at_a_crash_point_recovers(
    workspace: tuple[Path, Path], embedder: Embedder, action: str, point: str
) -> None:
    corpus, index = workspace
    args = command(corpus, action)
    env = {**os.environ, faults.ENV: f"{point}:kill"}
    killed = subprocess.run(
        cli_command(corpus, index, *args), capture_output=True, text=True, timeout=600, env=env
    )
    # 137 comes only from the crash point (a real SIGKILL would read -9): it died right there.
    assert killed.returncode == KILL_STATUS, killed.stderr[-2000:]
    recovers(corpus, index, embedder)


def test_every_crash_point_in_the_code_is_tested() -> None:
    named = set()
    for path in (PROJECT_ROOT / "assistant").rglob("*.py"):
        if path.name == "faults.py":
            continue
        named |= set(re.findall(r'fault_point\("([^"]+)"\)', path.read_text(encoding="utf-8")))
    tested = {point.partition("@")[0] for _, point in CASES}
    assert named, "no crash points found"
    assert named <= tested, f"untested crash points: {sorted(named - tested)}"
    assert {p for p in tested if p.startswith("replace.")} >= {
        "replace.CURRENT",
        "replace.state.json",
        "replace.sources.toml",
    }


# --- the pointer and state files, damaged from outside ------------------------------------------

DAMAGE = [
    ("CURRENT", b""),
    ("CURRENT", b"\xff\xfe\x00\x81garbage"),
    ("CURRENT", b"gen-that-does-not-exist\n"),
    ("CURRENT", b"../../../etc\n"),
    ("state.json", b""),
    ("state.json", b"{not json"),
    ("state.json", b"[1, 2, 3]"),
    ("state.json", b'"clean"'),
    ("state.json", b"\xff\x00\xfe"),
]


@pytest.mark.parametrize(("name", "content"), DAMAGE)
def test_a_damaged_pointer_or_state_file_is_repaired_or_explained(
    workspace: tuple[Path, Path], embedder: Embedder, name: str, content: bytes
) -> None:
    corpus, index = workspace
    generation = (index / "CURRENT").read_text().strip()
    target = index / name if name == "CURRENT" else index / generation / name
    target.write_bytes(content)
    for args in (["ask", TRADE, "--json"], ["index"], ["ask", TRADE, "--json"]):
        result = invoke(corpus, index, *args)
        # Either a message naming what to run (exit 1 or 2, no traceback), or it carries on.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )
        assert result.exit_code == 0, (args, result.output)
    assert "$240 billion" in json.loads(result.stdout)["citations"][0]["quote"]
    assert_consistent(corpus, index, embedder, complete=True)


def test_an_interrupted_write_that_left_the_store_unreadable_is_rebuilt_by_the_next_command(
    workspace: tuple[Path, Path], embedder: Embedder
) -> None:
    corpus, index = workspace
    generation = (index / "CURRENT").read_text().strip()
    state = index / generation / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "clean": False}))
    database = index / generation / "chroma" / "chroma.sqlite3"
    database.write_bytes(database.read_bytes()[:4096])
    ask = invoke(corpus, index, "ask", TRADE, "--json")
    assert ask.exit_code == 0, ask.output
    assert "left unreadable by an interrupted write; rebuilt it from the corpus" in ask.stderr
    assert "$240 billion" in json.loads(ask.stdout)["citations"][0]["quote"]
    assert (index / "CURRENT").read_text().strip() != generation
    assert_consistent(corpus, index, embedder, complete=True)


def test_damage_from_outside_is_not_rebuilt_silently(workspace: tuple[Path, Path]) -> None:
    corpus, index = workspace
    generation = (index / "CURRENT").read_text().strip()
    database = index / generation / "chroma" / "chroma.sqlite3"
    database.write_bytes(database.read_bytes()[:4096])  # the last write finished cleanly
    ask = invoke(corpus, index, "ask", TRADE, "--json")
    assert ask.exit_code == 1 and isinstance(ask.exception, SystemExit)
    assert "Run `assistant index --rebuild`" in ask.stderr
    assert (index / "CURRENT").read_text().strip() == generation
