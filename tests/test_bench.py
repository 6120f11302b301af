"""The benchmark script runs end to end on a small synthetic corpus (figures are not asserted:
they are printed, and recorded in BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from evals.bench import markdown
from evals.bench_runs import cold_breakdown
from evals.scaling import PLANTED, synthetic_corpus


def test_synthetic_corpus_is_deterministic_and_holds_the_planted_fact(tmp_path: Path) -> None:
    a = synthetic_corpus(tmp_path / "a", 200)
    b = synthetic_corpus(tmp_path / "b", 200)
    files = sorted(p.name for p in a.iterdir())
    assert len(files) == 20 and files == sorted(p.name for p in b.iterdir())
    assert all((a / f).read_text() == (b / f).read_text() for f in files)
    assert sum(PLANTED in (a / f).read_text() for f in files) == 1


@pytest.mark.slow
def test_scaling_run_prints_its_figures(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "evals.bench",
            "--skip-side-by-side",
            "--sizes",
            "300",
            "--reps",
            "1",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    row = data["scaling"][0]
    assert row["passages"] >= 250 and row["planted_recall_at_5"] is True
    assert row["p95_ms"] > 0 and row["rss_mb"] > 0 and row["index_mb"] > 0
    assert data["machine"]["cores"] >= 1
    assert (tmp_path / "scaling.png").stat().st_size > 0 and "planted fact in top 5" in (
        tmp_path / "bench.md"
    ).read_text()


def test_bad_arguments_are_refused() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "evals.bench", "--sizes", "many"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--sizes takes numbers" in out.stderr


def test_cold_start_breakdown_names_each_step(default_index: Path) -> None:
    phases = cold_breakdown(PROJECT_ROOT / "corpus", default_index, reps=1)
    steps = [k for k in phases if k != "total"]
    assert len(steps) == 7 and all(phases[k] >= 0 for k in steps)
    assert any(k.startswith("import chromadb") for k in steps)
    assert phases["total"] == pytest.approx(sum(phases[k] for k in steps))
    table = markdown(
        {
            "date": "today",
            "machine": {"cores": 2, "memory_mb": 1024, "cpu": "cpu", "python": "3"},
            "command": "python -m evals.bench",
            "reps": 1,
            "side_by_side": {
                **{
                    key: {"assistant": 1.0, "baseline": 2.0}
                    for key in (
                        "index_build_s",
                        "reindex_unchanged_s",
                        "cold_ask_s",
                        "cold_ask_rss_mb",
                    )
                },
                **{
                    key: {"p50": 1.0, "p95": 2.0}
                    for key in ("warm_answer_ms", "warm_retrieve_ms", "baseline_warm_retrieve_ms")
                },
                "cold_phases_s": phases,
            },
        }
    )
    assert "where the time goes" in table and "| import chromadb" in table
