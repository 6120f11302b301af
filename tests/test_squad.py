"""The SQuAD 2.0 benchmark: loading a file into documents and gold items, and `assistant eval
--squad` end to end on a tiny file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import InputError
from assistant.text import normalize_for_match
from evals.squad import load_squad, parse_articles

TINY: dict[str, Any] = {
    "version": "v2.0",
    "data": [
        {
            "title": "Lake_Baikal",
            "paragraphs": [
                {
                    "context": "Lake Baikal is a rift lake in Siberia. It is the deepest lake "
                    "in the world, at 1,642 metres. The lake holds about a fifth of the "
                    "fresh surface water on Earth.",
                    "qas": [
                        {
                            "id": "b1",
                            "question": "How deep is Lake Baikal?",
                            "answers": [{"text": "1,642 metres", "answer_start": 79}],
                            "is_impossible": False,
                        },
                        {
                            "id": "b2",
                            "question": "How much of Earth's fresh surface water is in Baikal?",
                            "answers": [{"text": "about a fifth", "answer_start": 0}],
                            "is_impossible": False,
                        },
                        {
                            "id": "b3",
                            "question": "Who owns the hotels on the shore of Lake Baikal?",
                            "answers": [],
                            "plausible_answers": [{"text": "Siberia", "answer_start": 30}],
                            "is_impossible": True,
                        },
                    ],
                },
                {
                    "context": "The Angara is the only river flowing out of the lake.",
                    "qas": [
                        {
                            "id": "b4",
                            "question": "Which river flows out of Lake Baikal?",
                            "answers": [{"text": "The Angara", "answer_start": 0}],
                            "is_impossible": False,
                        }
                    ],
                },
            ],
        },
        {
            "title": "Trans-Siberian Railway",
            "paragraphs": [
                {
                    "context": "The Trans-Siberian Railway links Moscow with Vladivostok. "
                    "Its main line is 9,289 kilometres long.",
                    "qas": [
                        {
                            "id": "t1",
                            "question": "How long is the main line of the Trans-Siberian?",
                            "answers": [{"text": "9,289 kilometres", "answer_start": 75}],
                            "is_impossible": False,
                        },
                        {
                            "id": "t2",
                            "question": "Which city does the railway link with Moscow?",
                            "answers": [{"text": "Vladivostok", "answer_start": 45}],
                            "is_impossible": False,
                        },
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(TINY), encoding="utf-8")
    return path


def test_squad_file_becomes_documents_and_gold_items(tiny: Path) -> None:
    squad = load_squad(tiny)
    assert [d.title for d in squad.documents] == ["Lake Baikal", "Trans-Siberian Railway"]
    baikal = squad.documents[0]
    assert baikal.text.startswith("# Lake Baikal\n\n") and baikal.paragraphs == 2
    items = {item.id: item for item in squad.items}
    assert list(items) == ["b1", "b2", "b3", "b4", "t1", "t2"]
    deep = items["b1"]
    assert deep.answerable and deep.extra["answers"] == ["1,642 metres"]
    assert deep.evidence == ("It is the deepest lake in the world, at 1,642 metres.",)
    assert deep.tags[0] == "Lake Baikal" and deep.kind == "Lake Baikal"
    # an answer whose offset is wrong is found by its text
    assert items["b2"].evidence[0].startswith("The lake holds about a fifth")
    impossible = items["b3"]
    assert not impossible.answerable and impossible.answer is None and not impossible.evidence
    assert impossible.extra["plausible_answers"] == ["Siberia"]
    for item in squad.items:
        doc = squad.documents[item.extra["article"]]
        assert all(normalize_for_match(e) in normalize_for_match(doc.text) for e in item.evidence)
        assert all(e in doc.text for e in item.evidence)


def test_articles_and_limit_choose_questions(tiny: Path) -> None:
    squad = load_squad(tiny, articles=[1])
    assert [d.title for d in squad.documents] == ["Trans-Siberian Railway"]
    assert [i.id for i in squad.items] == ["t1", "t2"]
    assert [i.id for i in load_squad(tiny, limit=1).items] == ["b1", "t1"]
    assert parse_articles("0, 3,5") == [0, 3, 5] and parse_articles(None) is None
    with pytest.raises(InputError, match="no article 2") as refused:
        load_squad(tiny, articles=[2])
    assert refused.value.hint and refused.value.hint.endswith("such as 0,1.")  # those it holds
    with pytest.raises(InputError, match="expected article indexes"):
        parse_articles("first")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"data": []}), 'needs a non-empty "data" list'),
        (json.dumps([1, 2]), 'needs a non-empty "data" list'),
        (
            json.dumps({"data": [{"title": "X", "paragraphs": [{"context": "Some text."}]}]}),
            'needs a "context" string and a "qas" list',
        ),
        (  # SQuAD 1.1: no is_impossible
            json.dumps(
                {
                    "data": [
                        {
                            "title": "X",
                            "paragraphs": [
                                {
                                    "context": "Some text.",
                                    "qas": [{"id": "1", "question": "q?", "answers": []}],
                                }
                            ],
                        }
                    ]
                }
            ),
            'needs "is_impossible"',
        ),
    ],
)
def test_files_that_are_not_squad_2_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_squad(path)


def test_eval_squad_end_to_end(tiny: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--index",
            str(tmp_path / "unused-index"),  # the benchmark indexes its own articles
            "eval",
            "--squad",
            str(tiny),
            "--no-baseline",
            "--json",
            "--out",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_items"] == 6 and "squad" in summary["run"]["id"]
    assert summary["hit_at_5"] is not None and summary["contains_answer"] is not None
    assert summary["correct_refusal"] is not None and "splits" not in summary
    assert set(summary["by_tag"]) == {"Lake Baikal", "Trans-Siberian Railway"}
    folder = Path(summary["run_dir"])
    assert folder.parent == tmp_path / "runs" / "squad"
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    assert {i["id"] for i in items} == {"b1", "b2", "b3", "b4", "t1", "t2"}
    deep = next(i for i in items if i["id"] == "b1")
    assert deep["references"] == ["1,642 metres"]
    assert deep["retrieved"][0]["passage_id"].startswith("lake-baikal:")
    assert "contains answer" in (folder / "report.md").read_text()


def test_eval_squad_on_the_training_file_says_it_is_in_sample(tmp_path: Path) -> None:
    from evals.squad import DEFAULT_SQUAD

    args = ["--index", str(tmp_path / "unused"), "eval", "--squad", str(DEFAULT_SQUAD)]
    args += ["--squad-articles", "4", "--squad-limit", "2", "--no-baseline", "--json"]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "fitted on these articles" in result.stderr
    assert json.loads(result.stdout)["n_items"] == 2


def test_eval_squad_on_another_file_says_nothing_of_it(tiny: Path, tmp_path: Path) -> None:
    args = ["--index", str(tmp_path / "unused"), "eval", "--squad", str(tiny), "--json"]
    result = CliRunner().invoke(cli, [*args, "--no-baseline", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "fitted on these articles" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--squad", "/nowhere/squad.json"], "No SQuAD file"),
        (["--squad", "BAD"], "not in SQuAD 2.0 format"),
        (["--squad", "TINY", "--squad-articles", "7"], "no article 7"),
        (["--squad", "TINY", "--split", "test"], "do not apply to it"),
    ],
)
def test_eval_squad_bad_input_exits_2(
    tiny: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": "v2.0", "data": [{"title": "X"}]}), encoding="utf-8")
    args = [{"BAD": str(bad), "TINY": str(tiny)}.get(a, a) for a in args]
    result = CliRunner().invoke(
        cli, ["--index", str(tmp_path / "index"), "eval", *args, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
