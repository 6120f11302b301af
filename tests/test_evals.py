"""The evaluation: the gold set itself, the metrics, and `assistant eval` end to end."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.errors import InputError
from assistant.service import Assistant
from assistant.types import Answer, AnswerSentence, Citation
from assistant.verify import SUPPORT_THRESHOLD
from evals.evaluation import parse_gates
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold, load_items
from evals.metrics import (
    ItemResult,
    bootstrap_ci,
    contains_answer,
    contains_evidence,
    normalize_answer,
    score_item,
    summarize,
    token_f1,
)
from evals.runner import judge_support, short_answer
from tests.conftest import CORPUS

GOLD = load_gold(DEFAULT_GOLD)
SUMMARY_KEYS = {
    "hit_at_1", "hit_at_5", "mrr", "ndcg_at_10", "citation_recall", "citation_precision",
    "support_rate", "answer_f1", "correct_refusal", "over_refusal", "latency_p50_ms",
    "latency_p95_ms", "n_items", "answer_words_median", "short_em", "short_f1", "contains_answer",
}  # fmt: skip


def test_gold_set_has_the_required_mix() -> None:
    dev = [item for item in GOLD if item.split == "dev"]
    tags = Counter(item.kind for item in dev)
    assert len(dev) >= 138
    assert tags["article"] >= 50
    assert tags["source"] >= 15
    assert tags["two-passage"] >= 10
    assert tags["off-topic"] + tags["on-topic-absent"] >= 15
    assert tags["off-topic"] >= 5 and tags["on-topic-absent"] >= 5
    assert len({t for item in dev for t in item.tags if t.startswith("conversation:")}) >= 10


def test_held_out_test_split_has_its_own_mix() -> None:
    test = [item for item in GOLD if item.split == "test"]
    tags = Counter(item.kind for item in test)
    assert len(test) >= 60
    assert tags["on-topic-absent"] >= 20 and tags["paraphrase"] >= 20
    assert tags["article"] + tags["source"] >= 15 and tags["two-passage"] >= 2
    assert len({t for item in test for t in item.tags if t.startswith("conversation:")}) >= 3
    for item in test:
        assert all(4 <= len(quote.split()) <= 15 for quote in item.evidence), item.id
    dev_questions = {item.question for item in GOLD if item.split == "dev"}
    assert not dev_questions & {item.question for item in test}


def test_split_is_loaded_validated_and_selected(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    line = '{{"id": "{}", "question": "q?", "answer": null, "evidence": [], "answerable": false{}}}'
    path.write_text("\n".join([line.format("a", ""), line.format("b", ', "split": "test"')]) + "\n")
    assert [(i.id, i.split) for i in load_gold(path)] == [("a", "dev"), ("b", "test")]
    assert [i.id for i in load_items([path], split="dev")] == ["a"]
    assert [i.id for i in load_items([path], split="test")] == ["b"]
    assert [i.id for i in load_items([path])] == ["a", "b"]
    with pytest.raises(InputError, match="Unknown split"):
        load_items([path], split="train")
    path.write_text(line.format("a", ', "split": "train"') + "\n")
    with pytest.raises(InputError, match=r'q.jsonl:1: "split" must be "dev" or "test"'):
        load_gold(path)
    path.write_text(line.format("a", "") + "\n")
    with pytest.raises(InputError, match="No test questions"):
        load_items([path], split="test")


def test_every_evidence_quote_is_verbatim_in_a_passage(assistant: Assistant) -> None:
    passages = [p.text for p in assistant.snapshot().passages]
    for item in GOLD:
        assert item.answerable == bool(item.evidence) == (item.answer is not None)
        for quote in item.evidence:
            assert any(contains_evidence(text, [quote]) for text in passages), (item.id, quote)


def test_bad_question_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "q?", "answer": null, "evidence": [], "answerable": false}\n{oops\n'
    )
    with pytest.raises(InputError, match=r"q.jsonl:2: not valid JSON"):
        load_gold(path)
    path.write_text(
        '{"id": "a", "question": "q?", "answer": "x", "evidence": [], "answerable": true}\n'
    )
    with pytest.raises(InputError, match="need an answer and evidence"):
        load_gold(path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('"history": [{"role": "user", "content": "hi"}]', '"history" must be a list of non-empty'),
        ('"history": "What is BRICS?"', '"history" must be a list of non-empty strings'),
        ('"history": [""]', '"history" must be a list of non-empty strings'),
        ('"tags": "paraphrase"', '"tags" must be a list of non-empty strings'),
    ],
)
def test_a_malformed_optional_field_names_the_file_and_line(
    tmp_path: Path, fields: str, message: str
) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "q?", "answer": null, "evidence": [], "answerable": false, '
        + fields
        + "}\n"
    )
    with pytest.raises(InputError, match="q.jsonl:1: " + re.escape(message)):
        load_gold(path)


def test_null_optional_lists_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "q?", "answer": null, "evidence": null, "answerable": false, '
        '"history": null, "tags": null}\n'
    )
    (item,) = load_gold(path)
    assert item.evidence == item.history == item.tags == ()


def test_an_empty_gold_question_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": " ", "answer": null, "answerable": false}\n')
    with pytest.raises(InputError, match=r'q\.jsonl:1: "question" is empty'):
        load_gold(path)


def _result(
    item: GoldItem,
    retrieved: list[str],
    cited: list[str],
    abstained: bool = False,
    answer: str = "",
) -> ItemResult:
    return ItemResult(
        item=item,
        answer=answer,
        abstained=abstained,
        citations=[{"text": t, "quote": t, "supported": True} for t in cited],
        sentences=[{"supported": True, "judge_support": 1.0}] * len(cited),
        retrieved=[{"passage_id": str(i), "text": t} for i, t in enumerate(retrieved)],
        latency_ms=10.0,
    )


def test_item_metrics_follow_their_definitions() -> None:
    item = GoldItem("x", "How big?", "Over $240 billion.", ("surpassing “$240 billion”",), True)
    r = _result(
        item,
        ["other", 'Trade was surpassing "$240  billion" in 2023'],
        ['Trade was surpassing "$240 billion"'],
        answer="surpassing $240 billion [1]",
    )
    s = score_item(r, relevant_total=1)
    assert (s["hit_at_1"], s["hit_at_5"], s["mrr"]) == (0.0, 1.0, 0.5)
    assert s["ndcg_at_10"] == pytest.approx(1 / 1.5849625, rel=1e-4)
    assert s["citation_recall"] == 1.0 and s["over_refusal"] == 0.0
    assert s["correct_refusal"] is None
    assert 0 < s["answer_f1"] < 1
    refusal = score_item(_result(GoldItem("y", "?", None, (), False), ["x"], [], abstained=True), 0)
    assert refusal["correct_refusal"] == 1.0 and refusal["hit_at_1"] is None


def test_precision_and_support_do_not_take_the_answerers_word() -> None:
    absent = GoldItem("u", "What was the budget?", None, (), False)
    cited = {
        "text": "The exercise was large.",
        "quote": "The exercise was large.",
        "supported": True,
    }
    confident = {"text": "The exercise was large. [1]", "supported": True, "judge_support": 0.2}
    wrong = ItemResult(absent, "The exercise was large. [1]", False, [cited], [confident], [], 1.0)
    s = score_item(wrong, 0)
    assert s["citation_precision"] == 0.0  # nothing to cite on an unanswerable item
    assert s["support_rate"] == 0.0  # the judge's score, not the answerer's flag
    assert summarize([wrong])["citation_precision"] == 0.0
    item = GoldItem("x", "Who signed?", "Lavrov and Li Zhaoxing", ("signed by Lavrov",), True)
    passage = "The accord was signed by Lavrov. It divided the islands."
    quotes = ["It divided the islands.", "Ministers Lavrov and Li Zhaoxing met.", "Rain fell."]
    citations = [{"text": passage, "quote": quotes[0]}] + [
        {"text": "other passage", "quote": q} for q in quotes[1:]
    ]
    r = ItemResult(item, "x", False, citations, [{"judge_support": 0.5}], [], 1.0)
    # the passage holds the evidence; the quote holds the answer; the third has neither
    assert score_item(r, 1)["citation_precision"] == pytest.approx(2 / 3)
    assert score_item(r, 1)["support_rate"] == 1.0


def test_the_runner_judges_support_itself(assistant: Assistant) -> None:
    passage = next(
        p for p in assistant.snapshot().passages if "The treaty has 25 articles." in p.text
    )
    cite = Citation(1, passage.id, passage.doc_id, "", "", "source", "", 0, 0, "", 0, 0)
    sentences = [
        AnswerSentence("The treaty has 25 articles. [1]", [1], 1.0, True),
        AnswerSentence("Bananas ripen fastest in warm Ecuadorian sheds. [1]", [1], 1.0, True),
        AnswerSentence("Nothing cited here about the treaty.", [], 1.0, True),
    ]
    answer = Answer("q", "", False, sentences=sentences, citations=[cite])
    scores = judge_support(assistant, answer)
    assert scores[0] == 1.0 and scores[1] < SUPPORT_THRESHOLD and scores[2] == 0.0


def test_short_answers_are_read_when_answers_carry_them() -> None:
    assert short_answer(SimpleNamespace(text="no short answers here")) == (None, False)
    assert short_answer(SimpleNamespace(short_answer=None)) == (None, True)
    short = SimpleNamespace(text="1,642 metres", passage_id="p", start=3, end=15)
    assert short_answer(SimpleNamespace(short_answer=short)) == (
        {"text": "1,642 metres", "passage_id": "p", "start": 3, "end": 15},
        True,
    )


def test_short_answers_and_contained_answers_are_scored() -> None:
    item = GoldItem("s", "q", "Lavrov", ("e f g h",), True, extra={"answers": ["Sergei Lavrov"]})
    r = ItemResult(item, "It was Sergei Lavrov. [1]", False, [], [], [], 1.0)
    r.short_answer, r.short_capable = {"text": "the Lavrov"}, True
    s = score_item(r, 0)
    assert s["short_em"] == 0.0 and s["short_f1"] == pytest.approx(2 / 3)
    assert s["contains_answer"] == 1.0
    r.short_answer = {"text": "Sergei Lavrov."}
    assert score_item(r, 0)["short_em"] == 1.0
    r.short_capable, r.short_answer = False, None  # a system without short answers: not scored
    assert score_item(r, 0)["short_em"] is None
    gold = GoldItem("g", "q", "Over $240 billion.", ("surpassing $240 billion",), True)
    plain = ItemResult(gold, "surpassing $240 billion [1]", False, [], [], [], 1.0)
    plain.short_answer, plain.short_capable = {"text": "$240 billion"}, True
    s = score_item(plain, 0)
    assert s["short_f1"] == pytest.approx(0.8) and s["contains_answer"] is None
    assert contains_answer("Paid 1,000 dollars", ["1,000"]) and not contains_answer("10", ["1"])
    assert normalize_answer("The “No Limits” partnership [1]") == "no limits partnership"


def test_token_f1_and_summary() -> None:
    assert token_f1("The EU.", "the EU") == 1.0
    assert token_f1("cars [1]", "machinery and cars") == pytest.approx(
        2 * 1 * (1 / 3) / (1 + 1 / 3)
    )
    item = GoldItem("x", "q", "a", ("a",), True)
    results = [_result(item, ["a"], ["a"], answer="a")] * 3 + [
        _result(item, ["b"], [], abstained=True)
    ]
    for r in results:
        r.scores = score_item(r, 1)
    results[0] = _result(item, ["a"], ["a"], answer="a b c [1]")
    results[0].scores = score_item(results[0], 1)
    summary = summarize(results)
    assert set(summary) >= SUMMARY_KEYS
    assert summary["hit_at_1"] == 0.75 and summary["over_refusal"] == 0.25
    assert summary["answer_words"] == 2.0 and summary["answer_words_median"] == 1.0
    low, high = bootstrap_ci(results, "hit_at_1")
    assert 0 <= low <= 0.75 <= high <= 1
    assert bootstrap_ci(results, "hit_at_1") == (low, high)  # fixed seed


def test_gates_parse_and_refuse_nonsense() -> None:
    gates = parse_gates(["hit_at_1=0.8"], ["over_refusal=0.05"])
    assert [(g.metric, g.op, g.threshold) for g in gates] == [
        ("hit_at_1", ">=", 0.8),
        ("over_refusal", "<=", 0.05),
    ]
    assert gates[0].check(0.81) and not gates[0].check(0.79) and gates[1].check(0.05)
    for bad, message in (
        ("hit_at_9=1", "expected METRIC=VALUE"),
        ("hit_at_1=high", "not a number"),
        ("over_refusal=0.1", "--fail-over"),
    ):
        with pytest.raises(InputError, match=message):
            parse_gates([bad])


@pytest.fixture(scope="module")
def small_questions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = {
        "article-09",
        "article-24",
        "source-10",
        "two-04",
        "off-topic-01",
        "absent-03",
        "conv-C01-2",
        "test-source-10",
    }
    path = tmp_path_factory.mktemp("questions") / "few.jsonl"
    lines = [
        line for line in DEFAULT_GOLD.read_text().splitlines() if json.loads(line)["id"] in wanted
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_eval(index: Path, *args: str):
    return CliRunner().invoke(cli, ["--corpus", str(CORPUS), "--index", str(index), "eval", *args])


def run_small_eval(index: Path, questions: Path, out: Path, *args: str):
    """`assistant eval` on a small question set, writing its run folders under `out`."""
    return run_eval(index, "--questions", str(questions), "--out", str(out), *args)


def test_eval_writes_a_run_folder_and_compares_runs(
    default_index: Path, small_questions: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    first = run_small_eval(
        default_index,
        small_questions,
        out,
        "--no-baseline",
        "--json",
    )
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert set(summary) >= SUMMARY_KEYS and summary["n_items"] == 8
    assert summary["run"]["split"] == "all"
    assert {k: v["n_items"] for k, v in summary["splits"].items()} == {"dev": 7, "test": 1}
    folder = Path(summary["run_dir"])
    for name in ("items.jsonl", "summary.json", "report.md", "metrics.png", "tags.png"):
        assert (folder / name).stat().st_size > 0, name
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    assert {"answer", "citations", "retrieved", "scores", "passed"} <= set(items[0])
    report = (folder / "report.md").read_text()
    assert "| hit@1 |" in report and "[95% CI]" in report and "answer length (words)" in report
    assert "## By split" in report and "| dev (n=7) | test (n=1) |" in report
    assert all("judge_support" in s for item in items for s in item["sentences"])
    assert not list(out.glob(".*.tmp"))

    second = run_small_eval(
        default_index,
        small_questions,
        out,
        "--no-baseline",
        "--json",
    )
    data = json.loads(second.stdout)
    assert data["compare"]["run"] == folder.name
    assert data["compare"]["newly_failing"] == [] and data["compare"]["newly_passing"] == []
    assert (Path(data["run_dir"]) / "compare.png").exists()
    assert f"## Against {folder.name}" in (Path(data["run_dir"]) / "report.md").read_text()


def test_eval_gates_fail_the_run_with_exit_1(
    default_index: Path, small_questions: Path, tmp_path: Path
) -> None:
    result = run_small_eval(
        default_index,
        small_questions,
        tmp_path,
        "--no-baseline",
        "--no-compare",
        "--split",
        "test",
        "--fail-under",
        "hit_at_1=1.01",
        "--fail-over",
        "latency_p95_ms=100000",
    )
    assert result.exit_code == 1
    assert re.search(r"^questions +1$", result.stdout, re.M)  # the test split alone
    assert "By split" not in result.stdout
    assert "Gate failed: hit_at_1" in result.stderr
    assert "latency_p95_ms" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-under", "nonsense"], "expected METRIC=VALUE"),
        (["--questions", "/nowhere/q.jsonl"], "No question file"),
        (["--compare", "/nowhere/run"], "not an evaluation run folder"),
        (["--split", "train"], "Invalid value for '--split'"),
        (["--squad-limit", "5"], "only apply to a SQuAD run"),
    ],
)
def test_eval_bad_input_exits_2(
    default_index: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_eval(default_index, "--out", str(tmp_path), "--no-baseline", *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_baseline_runs_side_by_side(
    default_index: Path, small_questions: Path, tmp_path: Path
) -> None:
    result = run_small_eval(
        default_index,
        small_questions,
        tmp_path,
        "--no-compare",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    base = data["baseline"]["metrics"]
    assert set(base) >= SUMMARY_KEYS and base["n_items"] == 8
    assert data["baseline"]["splits"]["test"]["n_items"] == 1
    assert base["answer_words"] > data["answer_words"]  # whole chunks, not sentences
    assert base["correct_refusal"] == 0.0  # the baseline never abstains
    report = (Path(data["run_dir"]) / "report.md").read_text()
    assert "LlamaIndex default [95% CI]" in report
    assert (Path(data["run_dir"]) / "baseline-items.jsonl").exists()


def test_the_bundled_questions_over_a_corpus_of_ones_own_are_refused(
    small_assistant: Assistant, small_questions: Path, tmp_path: Path
) -> None:
    """Scoring the bundled questions against other documents measures nothing: refused, with
    the way to bring questions of one's own, and no run folder is written."""
    small_assistant.index()
    settings = small_assistant.settings
    where = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    out = tmp_path / "runs"
    for extra, hint in (
        ([], "Pass --questions FILE"),
        (["--questions", str(small_questions)], "--corpus DIR"),
    ):
        result = CliRunner().invoke(
            cli, [*where, "eval", "--no-baseline", "--out", str(out), *extra]
        )
        assert result.exit_code == 2, result.output
        assert "they are about other documents" in result.output and hint in result.output
    assert not out.exists()
