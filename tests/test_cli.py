import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from tests.conftest import CORPUS

TRADE = "How large was bilateral trade between Russia and China in 2023?"
AIGUN = "What was the Treaty of Aigun?"


def run(args: list[str], index: Path, corpus: Path = CORPUS, input: str | None = None):
    runner = CliRunner()
    return runner.invoke(cli, ["--corpus", str(corpus), "--index", str(index), *args], input=input)


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and 'assistant ask "' in result.output
    for command in ("ask", "chat", "index", "sources", "show", "cite", "add"):
        assert command in result.output


def test_ask_json_has_the_documented_shape(default_index: Path) -> None:
    result = run(["ask", TRADE, "--json"], default_index)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"question", "answer", "abstained", "citations", "passages"} <= set(data)
    assert data["question"] == TRADE and data["abstained"] is False
    citation = data["citations"][0]
    assert {"n", "passage_id", "doc_id", "title", "url", "start", "end", "quote", "kind"} <= set(
        citation
    )
    assert "$240 billion" in citation["quote"]
    short = data["short_answer"]
    assert short["text"] == "$240 billion" and short["passage_id"] == citation["passage_id"]
    doc_text = citation["quote"][
        short["start"] - citation["start"] : short["end"] - citation["start"]
    ]
    assert doc_text == short["text"] and citation["start"] <= short["start"] < short["end"]
    # The answer opens with the short answer, then the sentence that states it (a second
    # source may follow).
    assert data["answer"].startswith(f"**$240 billion** — {citation['quote']} [1]")
    passage = data["passages"][0]
    assert {"passage_id", "doc_id", "title", "score", "text"} <= set(passage)
    scores = [p["score"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)
    text = (CORPUS / "documents" / "sino-russian-relations.md").read_text(encoding="utf-8")
    assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_ask_text_lists_numbered_sources(default_index: Path) -> None:
    result = run(["ask", TRADE, "-k", "3"], default_index)
    assert result.exit_code == 0
    assert "$240 billion" in result.output
    assert "Sources:\n[1] Sino-Russian Relations" in result.output
    assert "(article)" in result.output


def test_show_prints_the_cited_passage_in_context(default_index: Path) -> None:
    cited = json.loads(run(["ask", TRADE, "--json"], default_index).output)["citations"][0]
    result = run(["show", cited["passage_id"]], default_index)
    assert result.exit_code == 0
    assert f"Passage {cited['passage_id']}" in result.output
    assert ">>> Moreover, Russia’s growing isolation" in result.output
    assert (
        "<<<" in result.output and "Section: Growing Economic Dependence on China" in result.output
    )
    as_json = json.loads(
        run(["show", cited["passage_id"], "--json", "--context", "50"], default_index).output
    )
    assert as_json["id"] == cited["passage_id"] and len(as_json["before"]) == 50


def test_cite_lists_supporting_passages_best_first(default_index: Path) -> None:
    result = run(
        ["cite", "Trade between Russia and China passed $240 billion in 2023", "--json"],
        default_index,
    )
    assert result.exit_code == 0
    data = json.loads(result.output)
    top = data["passages"][0]
    assert top["supports"] and "240 billion" in top["quote"]
    scores = [p["support"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)
    text = run(["cite", "China accounts for more than 30% of Russia's imports"], default_index)
    assert text.exit_code == 0 and text.output.startswith("1. ") and "supports" in text.output


def test_a_one_passage_document_is_listed_as_one_passage(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "amur.md").write_text("# The Amur\n\nThe Amur River is 2,824 kilometres long.")
    text = run(["sources"], tmp_path / "idx", corpus).stdout
    assert "    1 passage · amur.md" in text


def test_sources_lists_documents_with_metadata(default_index: Path) -> None:
    data = json.loads(run(["sources", "--json"], default_index).output)
    article = data[0]
    assert article["id"] == "sino-russian-relations" and article["kind"] == "article"
    assert article["passages"] > 20
    text = run(["sources"], default_index).output
    assert text.startswith("sino-russian-relations  [article]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", ""], "The question is empty."),
        (["ask", "   "], "The question is empty."),
        (["ask", "x" * 2001], "limit is 2,000"),
        (["show", "no-such:passage"], "No passage with id 'no-such:passage'"),
        (["cite", " "], "The claim is empty."),
        (["ask", TRADE, "-k", "0"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    default_index: Path, args: list[str], message: str
) -> None:
    result = run(args, default_index)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_show_suggests_close_ids(default_index: Path) -> None:
    cited = json.loads(run(["ask", TRADE, "--json"], default_index).output)["citations"][0]
    result = run(["show", cited["passage_id"][:-1]], default_index)
    assert result.exit_code == 2 and f"Did you mean: {cited['passage_id']}" in result.output


def test_ask_builds_a_missing_index_first(small_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "fresh-index"
    result = run(["ask", "How deep is Lake Baikal?", "--json"], index, small_corpus)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "1,642 metres" in data["citations"][0]["quote"]
    assert "building it now" in result.stderr


def test_index_command_reports_and_warns_about_skipped_files(
    small_corpus: Path, tmp_path: Path
) -> None:
    (small_corpus / "broken.txt").write_bytes(b"\x00\x00")
    result = run(["index"], tmp_path / "idx", small_corpus)
    assert result.exit_code == 0
    assert "Warning: skipped broken.txt: binary file, not text" in result.stderr
    assert "3 added" in result.stdout
    again = json.loads(run(["index", "--json"], tmp_path / "idx", small_corpus).stdout)
    assert again["added"] == [] and sorted(again["unchanged"]) == ["baikal", "silk", "tea"]


def test_add_copies_records_and_indexes(small_corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    assert run(["index"], index, small_corpus).exit_code == 0
    new = tmp_path / "amur.md"
    new.write_text(
        "# The Amur\n\nThe Amur River is 2,824 kilometres long and marks much of the border."
    )
    result = run(
        [
            "add",
            str(new),
            "--title",
            "Amur River",
            "--url",
            "https://example.org/amur",
            "--date",
            "2024-02-01",
        ],
        index,
        small_corpus,
    )
    assert result.exit_code == 0, result.output
    assert "Added documents/amur.md" in result.output and "1 added" in result.output
    answer = json.loads(
        run(["ask", "How long is the Amur River?", "--json"], index, small_corpus).stdout
    )
    assert answer["citations"][0]["title"] == "Amur River"
    assert answer["citations"][0]["url"] == "https://example.org/amur"


def test_add_tried_again_after_a_busy_index_indexes_what_it_copied(
    small_corpus: Path, tmp_path: Path
) -> None:
    """An add whose indexing found the index busy copied the file; trying again, as the
    message says, indexes it (it used to say "Already in the corpus" and index nothing)."""
    from assistant.fsutil import FileLock

    index = tmp_path / "idx"
    assert run(["index"], index, small_corpus).exit_code == 0
    new = tmp_path / "amur.md"
    new.write_text("# The Amur\n\nThe Amur River is 2,824 kilometres long.")
    lock = FileLock(index / ".lock", "assistant index")
    lock.acquire()
    try:
        busy = run(["add", str(new)], index, small_corpus)
    finally:
        lock.release()
    assert busy.exit_code == 1 and "is being written by" in busy.output
    again = run(["add", str(new)], index, small_corpus)
    assert again.exit_code == 0, again.output
    assert "Already in the corpus" in again.output and "1 added" in again.output
    answer = json.loads(
        run(["ask", "How long is the Amur River?", "--json"], index, small_corpus).stdout
    )
    assert answer["citations"][0]["doc_id"] == "amur"


def test_add_of_a_named_file_it_cannot_use_exits_2_after_adding_the_rest(
    small_corpus: Path, tmp_path: Path
) -> None:
    good, bad = tmp_path / "amur.md", tmp_path / "report.docx"
    good.write_text("# The Amur\n\nThe Amur River is 2,824 kilometres long.")
    bad.write_bytes(b"PK\x03\x04")
    result = run(["add", str(good), str(bad)], tmp_path / "idx", small_corpus)
    assert result.exit_code == 2, result.output
    assert "Added documents/amur.md" in result.stdout
    assert f"Not added: {bad}" in result.stderr and "1 added" not in result.stderr
    assert (small_corpus / "documents" / "amur.md").exists()


def test_add_missing_file_exits_2_and_writes_nothing(small_corpus: Path, tmp_path: Path) -> None:
    result = run(["add", str(tmp_path / "missing.md")], tmp_path / "idx", small_corpus)
    assert result.exit_code == 2 and "No such file" in result.output
    assert not (small_corpus / "documents").exists()


def test_chat_json_keeps_stdout_to_json_lines(default_index: Path, tmp_path: Path) -> None:
    script = f"{TRADE}\n/new\n/sources\n/help\n{TRADE}\n/export {tmp_path / 'c.md'}\n"
    result = run(["chat", "--json"], default_index, input=script)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["citations"] for line in lines)
    assert "New conversation." in result.stderr and "Saved 1 turn" in result.stderr
    assert (tmp_path / "c.md").exists()


def test_chat_answers_lines_from_stdin(default_index: Path) -> None:
    result = run(
        ["chat", "--json"], default_index, input=f"{TRADE}\nWhat about Central Asia?\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    assert "$240 billion" in lines[0]["citations"][0]["quote"]
    assert "Central Asia" in lines[1]["citations"][0]["quote"]


@pytest.mark.parametrize(
    ("env", "named", "shown"),
    [
        ({"ASSISTANT_QUERY_RUNTIME": "bogus"}, "ASSISTANT_QUERY_RUNTIME", "'bogus'"),
        ({"ASSISTANT_RETRIEVAL__TOP_K": "0"}, "ASSISTANT_RETRIEVAL__TOP_K", "greater than"),
        ({"ASSISTANT_WEB_WORKERS": "many"}, "ASSISTANT_WEB_WORKERS", "'many'"),
    ],
)
def test_a_bad_setting_is_named_with_exit_2_not_a_traceback(
    tmp_path: Path, env: dict[str, str], named: str, shown: str
) -> None:
    result = CliRunner(env=env).invoke(cli, ["--index", str(tmp_path / "index"), "ask", "x"])
    assert result.exit_code == 2, result.output
    assert f"Invalid setting: {named}" in result.output and shown in result.output
    assert "README.md" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "index").exists()


def test_chat_export_writes_only_a_conversation_into_a_folder_that_exists(
    default_index: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "chat.md"
    good = tmp_path / "chat.md"
    lines = [
        f"/export {good}",  # nothing asked yet
        TRADE,
        f"/export {missing}",
        f"/export {tmp_path}",
        f"/export {good}",
        "/quit",
    ]
    result = run(["chat"], default_index, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "Nothing to export yet: ask a question first." in result.stderr
    assert f"there is no folder {missing.parent}" in result.stderr
    assert "is a folder; give a file name" in result.stderr
    assert not missing.parent.exists(), "a mistyped path must not become a new folder"
    assert f"Saved 1 turn to {good}." in result.stdout
    assert "$240 billion" in good.read_text(encoding="utf-8")
    assert good.stat().st_mode & 0o777 == 0o644  # a document to share


def test_chat_export_never_replaces_a_file_it_did_not_write(
    default_index: Path, tmp_path: Path
) -> None:
    other = tmp_path / "notes.md"
    other.write_text("my notes")
    mine = tmp_path / "chat.md"
    lines = [TRADE, f"/export {other}", f"/export {mine}", AIGUN, f"/export {mine}", "/quit"]
    result = run(["chat"], default_index, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert f"{other} already exists; give a new file name" in result.stderr
    assert other.read_text() == "my notes"
    assert f"Saved 2 turns to {mine}." in result.stdout  # its own file, written again


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_doc_is_refused_not_read_as_every_document(default_index: Path, blank: str) -> None:
    result = run(["ask", TRADE, "--doc", blank], default_index)
    assert result.exit_code == 2 and "hold an empty string" in result.output


def test_paths_that_cannot_work_are_named_with_what_to_do(
    default_index: Path, small_corpus: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    as_index = run(["ask", TRADE], a_file)
    assert as_index.exit_code == 2
    assert f"--index {a_file} is a file, not a folder." in as_index.output
    as_corpus = run(["sources"], tmp_path / "idx", a_file)
    assert as_corpus.exit_code == 2 and f"--corpus {a_file} is a file" in as_corpus.output
    # A corpus folder that is gone: the built index still answers, and the note says why the
    # corpus is not read (not that it "changed", which `index` could not fix).
    gone = run(["sources"], default_index, tmp_path / "moved-away")
    assert gone.exit_code == 0
    assert "there is no corpus folder at" in gone.stderr and "changed" not in gone.stderr
    assert "sino-russian-relations" in gone.stdout
    # Indexing a corpus that is not there leaves no index folder behind.
    nowhere = run(["index"], tmp_path / "never-made", tmp_path / "moved-away")
    assert nowhere.exit_code == 2 and "No corpus folder at" in nowhere.output
    assert not (tmp_path / "never-made").exists()
    # An empty corpus: the answer is an abstention, and the note says how to add documents.
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    asked = run(["ask", "How deep is Lake Baikal?"], tmp_path / "empty-index", empty)
    assert asked.exit_code == 0, asked.output
    assert "holds no documents yet; add some with `assistant add FILE`" in asked.stderr
    filled = run(["ask", "How deep is Lake Baikal?"], tmp_path / "idx2", small_corpus)
    assert "holds no documents" not in filled.stderr


def test_ctrl_c_just_after_the_work_is_done_ends_as_ctrl_c_does(
    small_corpus: Path, tmp_path: Path
) -> None:
    """A Ctrl-C that lands while Python waits for the worker threads to end (just after
    `add` has indexed) ends the process as an interrupt, never with the threading module's
    traceback and a status of 0."""
    import signal
    import subprocess

    from tests.helpers import cli_command

    index = tmp_path / "index"
    assert subprocess.run(cli_command(small_corpus, index, "index"), check=False).returncode == 0
    new = tmp_path / "new.txt"
    new.write_text("Tea grows in Yunnan and travelled to Kyakhta by caravan.\n")
    proc = subprocess.Popen(
        cli_command(small_corpus, index, "add", str(new)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Index:"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stdout.read()
    code = proc.wait(timeout=120)
    assert "Index:" in "".join(seen), rest
    assert "Traceback" not in rest and "Exception ignored" not in rest
    assert code in (130, -signal.SIGINT), (code, rest)
