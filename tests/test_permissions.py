"""Files and folders the assistant may not read or write: a message, never a traceback.

Root reads and writes whatever the permissions say, so as root these run the command as the
unprivileged user `nobody` (with setpriv or runuser), in a separate process."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DATA

UNPRIVILEGED_TOOL_MISSING = "running as root, and neither setpriv nor runuser is installed"


def unprivileged(cmd: list[str]) -> list[str]:
    """`cmd` as a user that file permissions apply to: this one, or `nobody` when root."""
    if os.geteuid() != 0:
        return cmd
    nobody = pwd.getpwnam("nobody")
    if shutil.which("setpriv"):
        ids = [f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        return ["setpriv", *ids, *cmd]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--", *cmd]
    pytest.skip(UNPRIVILEGED_TOOL_MISSING)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder outside pytest's own (which is private to the user running the tests), that
    the unprivileged user can enter and read."""
    folder = Path(tempfile.mkdtemp(prefix="assistant-permissions-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run(cmd: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        unprivileged(cmd), capture_output=True, text=True, timeout=300, env=env, cwd=home
    )


def readable_corpus(folder: Path) -> Path:
    """A corpus of one document that the unprivileged user can read."""
    corpus = folder / "corpus"
    corpus.mkdir()
    shutil.copy(DATA / "baikal.md", corpus / "baikal.md")
    corpus.chmod(0o755)
    (corpus / "baikal.md").chmod(0o644)
    return corpus


def cli(corpus: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", "--corpus", str(corpus), "--index", str(index)]


def test_unreadable_file_is_reported(open_folder: Path) -> None:
    path = open_folder / "secret.md"
    path.write_text("# Secret\n\nText.")
    path.chmod(0)
    script = (
        "import sys\n"
        "from assistant.corpus import CorpusFileError, extract\n"
        "try:\n"
        "    extract(__import__('pathlib').Path(sys.argv[1]))\n"
        "except CorpusFileError as exc:\n"
        "    print('refused:', exc)\n"
        "else:\n"
        "    print('read it')\n"
    )
    out = run([sys.executable, "-c", script, str(path)], open_folder)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "refused: permission denied"


def test_an_index_folder_it_cannot_write_is_a_clear_error(open_folder: Path) -> None:
    corpus = readable_corpus(open_folder)
    locked = open_folder / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # the index would go inside: nobody may create it
    index = locked / "index"
    cmd = cli(corpus, index)
    out = run([*cmd, "index"], open_folder)
    assert out.returncode == 1, out.stderr
    assert f"Cannot write the index at {index}: Permission denied." in out.stderr
    assert "Check the folder's permissions or set ASSISTANT_INDEX_DIR." in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not index.exists()


def test_an_index_that_became_read_only_is_a_clear_error(open_folder: Path) -> None:
    """The lock can still be taken (its file is there and writable) but nothing new can be
    written beside it: the rebuild stops with the message, and the index still answers."""
    corpus = readable_corpus(open_folder)
    index = open_folder / "index"
    index.mkdir()
    if os.geteuid() == 0:  # the index is the unprivileged user's own, as it would be
        nobody = pwd.getpwnam("nobody")
        os.chown(index, nobody.pw_uid, nobody.pw_gid)
    cmd = cli(corpus, index)
    built = run([*cmd, "index"], open_folder)
    assert built.returncode == 0, built.stderr
    index.chmod(0o555)
    out = run([*cmd, "index", "--rebuild"], open_folder)
    assert out.returncode == 1, out.stderr
    assert f"Cannot write the index at {index}: Permission denied." in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    asked = run([*cmd, "ask", "How deep is Lake Baikal?"], open_folder)
    assert asked.returncode == 0, asked.stderr
    assert "[1]" in asked.stdout
