"""The evaluation: the gold set itself, the metrics, and `assistant eval` end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.api import Assistant
from assistant.cli import cli
from assistant.errors import InputError
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.metrics import (
    ItemResult,
    bootstrap_ci,
    contains_evidence,
    score_item,
    summarize,
    token_f1,
)
from evals.run import parse_gates
from tests.conftest import CORPUS

GOLD = load_gold(DEFAULT_GOLD)
SUMMARY_KEYS = {
    "hit_at_1", "hit_at_5", "mrr", "ndcg_at_10", "citation_recall", "citation_precision",
    "support_rate", "answer_f1", "correct_refusal", "over_refusal", "latency_p50_ms",
    "latency_p95_ms", "n_items",
}  # fmt: skip


def test_gold_set_has_the_required_mix() -> None:
    tags = Counter(item.kind for item in GOLD)
    assert len(GOLD) >= 90
    assert tags["article"] >= 50
    assert tags["source"] >= 15
    assert tags["two-passage"] >= 10
    assert tags["off-topic"] + tags["on-topic-absent"] >= 15
    assert abs(tags["off-topic"] - tags["on-topic-absent"]) <= 2
    assert len({t for item in GOLD for t in item.tags if t.startswith("conversation:")}) >= 10


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
        citations=[{"text": t, "supported": True} for t in cited],
        sentences=[{"supported": True}] * len(cited),
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
    summary = summarize(results)
    assert set(summary) >= SUMMARY_KEYS
    assert summary["hit_at_1"] == 0.75 and summary["over_refusal"] == 0.25
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
    assert set(summary) >= SUMMARY_KEYS and summary["n_items"] == 7
    folder = Path(summary["run_dir"])
    for name in ("items.jsonl", "summary.json", "report.md", "metrics.png", "tags.png"):
        assert (folder / name).stat().st_size > 0, name
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    assert {"answer", "citations", "retrieved", "scores", "passed"} <= set(items[0])
    report = (folder / "report.md").read_text()
    assert "| hit@1 |" in report and "[95% CI]" in report and "answer length (words)" in report
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
        "--fail-under",
        "hit_at_1=1.01",
        "--fail-over",
        "latency_p95_ms=100000",
    )
    assert result.exit_code == 1
    assert "Gate failed: hit_at_1" in result.stderr
    assert "latency_p95_ms" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-under", "nonsense"], "expected METRIC=VALUE"),
        (["--questions", "/nowhere/q.jsonl"], "No question file"),
        (["--compare", "/nowhere/run"], "not an evaluation run folder"),
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
    assert set(base) >= SUMMARY_KEYS and base["n_items"] == 7
    assert base["answer_words"] > data["answer_words"]  # whole chunks, not sentences
    assert base["correct_refusal"] == 0.0  # the baseline never abstains
    report = (Path(data["run_dir"]) / "report.md").read_text()
    assert "LlamaIndex default [95% CI]" in report
    assert (Path(data["run_dir"]) / "baseline-items.jsonl").exists()
