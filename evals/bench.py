"""Benchmarks, printed as figures: this project against LlamaIndex's default recipe on the same
machine in one run, and a scaling run on synthetic corpora.

    python -m evals.bench                      # side by side on the default corpus, then scaling
    python -m evals.bench --sizes 1000,10000   # a shorter scaling run
    python -m evals.bench --skip-scaling --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.bench_runs import cold_child, machine, side_by_side
from evals.scaling import plot_scaling, query_child, scaling


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['date']} on {m['cores']} cores, {m['memory_mb'] / 1024:.1f} GiB ({m['cpu']}), Python {m['python']}.",
        f"Command: `{results['command']}`; {results['reps']} repetitions, medians.",
        "",
    ]
    s = results.get("side_by_side")
    if s:
        lines += [
            "| figure | assistant | LlamaIndex default | ratio |",
            "|---|---|---|---|",
            f"| index build from nothing (s) | {s['index_build_s']['assistant']:.1f} | {s['index_build_s']['baseline']:.1f} | {ratio(s['index_build_s']['assistant'], s['index_build_s']['baseline'])} |",
            f"| re-index, nothing changed (s) | {s['reindex_unchanged_s']['assistant']:.2f} | {s['reindex_unchanged_s']['baseline']:.1f} (rebuilds) | {ratio(s['reindex_unchanged_s']['assistant'], s['reindex_unchanged_s']['baseline'])} |",
            f"| cold ask, fresh process (s) | {s['cold_ask_s']['assistant']:.2f} | {s['cold_ask_s']['baseline']:.2f} | {ratio(s['cold_ask_s']['assistant'], s['cold_ask_s']['baseline'])} |",
            f"| cold ask peak memory (MB) | {s['cold_ask_rss_mb']['assistant']:.0f} | {s['cold_ask_rss_mb']['baseline']:.0f} | {ratio(s['cold_ask_rss_mb']['assistant'], s['cold_ask_rss_mb']['baseline'])} |",
            f"| warm answer p50 / p95 (ms), ours: retrieve + answer + check | {s['warm_answer_ms']['p50']:.1f} / {s['warm_answer_ms']['p95']:.1f} | {s['baseline_warm_retrieve_ms']['p50']:.1f} / {s['baseline_warm_retrieve_ms']['p95']:.1f} (retrieval only) | {ratio(s['warm_answer_ms']['p50'], s['baseline_warm_retrieve_ms']['p50'])} / {ratio(s['warm_answer_ms']['p95'], s['baseline_warm_retrieve_ms']['p95'])} |",
            f"| warm retrieval only p50 / p95 (ms) | {s['warm_retrieve_ms']['p50']:.1f} / {s['warm_retrieve_ms']['p95']:.1f} | {s['baseline_warm_retrieve_ms']['p50']:.1f} / {s['baseline_warm_retrieve_ms']['p95']:.1f} | {ratio(s['warm_retrieve_ms']['p50'], s['baseline_warm_retrieve_ms']['p50'])} / {ratio(s['warm_retrieve_ms']['p95'], s['baseline_warm_retrieve_ms']['p95'])} |",
            "",
        ]
        phases = s.get("cold_phases_s")
        if phases:
            lines += ["| cold `assistant ask`: where the time goes | seconds |", "|---|---|"]
            lines += [f"| {name} | {sec:.2f} |" for name, sec in phases.items()]
            lines.append("")
    rows = results.get("scaling")
    if rows:
        lines += [
            "| passages | index time (s) | index on disk (MB) | open (s) | p50 (ms) | p95 (ms) | planted fact in top 5 | process memory (MB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['passages']:,} | {r['index_s']:.0f} | {r['index_mb']:.0f} | {r['open_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {'yes' if r['planted_recall_at_5'] else 'no'} | {r['rss_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions of each measurement (medians)"
    )
    parser.add_argument(
        "--sizes", default="1000,10000,50000", help="passages in the synthetic corpora"
    )
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-side-by-side", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for bench.json, bench.md and scaling.png"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this folder and keep the indexes built"
    )
    parser.add_argument(
        "--query-child", nargs=3, metavar=("CORPUS", "INDEX", "QUESTIONS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--cold-child", nargs=2, metavar=("CORPUS", "INDEX"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.query_child:
        corpus, index, qfile = (Path(p) for p in args.query_child)
        print(json.dumps(query_child(corpus, index, qfile)))
        return 0
    if args.cold_child:
        corpus, index = (Path(p) for p in args.cold_child)
        print(json.dumps(cold_child(corpus, index)))
        return 0
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes numbers separated by commas, e.g. 1000,10000")

    from assistant import PROJECT_ROOT
    from evals.gold import DEFAULT_GOLD, load_gold

    questions = [i.question for i in load_gold(DEFAULT_GOLD) if not i.history]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %z"),
        "machine": machine(),
        "reps": args.reps,
        "command": "python -m evals.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    work = args.keep or Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_side_by_side:
            log("Side by side on the default corpus")
            results["side_by_side"] = side_by_side(
                PROJECT_ROOT / "corpus", work, args.reps, questions, log
            )
        if not args.skip_scaling and sizes:
            log("Scaling on synthetic corpora")
            results["scaling"] = scaling(sizes, work, questions[:60], log, args.reps)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    text = markdown(results)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.json").write_text(json.dumps(results, indent=1))
        (args.out / "bench.md").write_text(text)
        if results.get("scaling"):
            plot_scaling(results["scaling"], args.out / "scaling.png")
    print(json.dumps(results, indent=1) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
