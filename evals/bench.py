"""Benchmarks, printed as figures: this project against LlamaIndex's default recipe on the same
machine in one run, and a scaling run on synthetic corpora.

    python -m evals.bench                      # side by side on the default corpus, then scaling
    python -m evals.bench --sizes 1000,10000   # a shorter scaling run
    python -m evals.bench --skip-scaling --reps 5
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PLANTED = (
    "The Halvorsen ledger records that 4,817 crates of Yunnan tea reached Kyakhta on 3 March 1911."
)
PLANTED_QUESTION = (
    "How many crates of Yunnan tea reached Kyakhta according to the Halvorsen ledger?"
)
QUESTION = "How large was bilateral trade between Russia and China in 2023?"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def machine() -> dict[str, Any]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "cpu": cpu,
        "python": platform.python_version(),
    }


# Runs a command from a small, fresh process and reports that command's own peak memory. Linux
# carries a process's peak RSS across fork and exec, so measuring a child of this (large)
# process directly would report this process's peak instead.
_LAUNCHER = """
import json, os, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "rss_kb": usage.ru_maxrss}, f)
"""


def run_child(
    cmd: list[str], env: dict[str, str] | None = None, show: bool = False
) -> dict[str, Any]:
    """Run a command in a fresh process: wall time, its own peak memory, exit code, output.
    With `show`, its progress bar (stderr) stays on the terminal."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *cmd],
            stdout=subprocess.PIPE,
            stderr=None if show else subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            check=False,
        )
        wall = time.perf_counter() - started
        measured = json.loads(Path(report.name).read_text() or "{}")
    return {
        "seconds": wall,
        "rss_mb": measured.get("rss_kb", 0) / 1024,
        "rc": measured.get("rc", done.returncode),
        "stdout": done.stdout.decode(errors="replace"),
    }


def assistant_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", *args]


def baseline_cmd(store: Path, corpus: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "evals.baseline_cli",
        "--store",
        str(store),
        "--corpus",
        str(corpus),
        *args,
    ]


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _check(run: dict[str, Any], what: str) -> dict[str, Any]:
    if run["rc"] != 0:
        raise SystemExit(f"{what} failed with exit code {run['rc']}:\n{run['stdout'][-2000:]}")
    return run


def side_by_side(
    corpus: Path, work: Path, reps: int, questions: list[str], log: Callable[[str], None]
) -> dict[str, Any]:
    """Index build, re-index, cold start and warm latency: this project against the baseline."""
    out: dict[str, Any] = {}
    ours_build, base_build = [], []
    for i in range(reps):
        index = work / f"index-{i}"
        log(f"  build {i + 1}/{reps}: assistant")
        ours_build.append(
            _check(
                run_child(assistant_cmd("--corpus", str(corpus), "--index", str(index), "index")),
                "assistant index",
            )
        )
        log(f"  build {i + 1}/{reps}: baseline")
        base_build.append(
            _check(run_child(baseline_cmd(work / f"base-{i}", corpus, "build")), "baseline build")
        )
    index, store = work / "index-0", work / "base-0"
    reindex = [
        _check(
            run_child(assistant_cmd("--corpus", str(corpus), "--index", str(index), "index")),
            "re-index",
        )
        for _ in range(reps)
    ]
    log("  cold starts")
    ours_cold = [
        _check(
            run_child(
                assistant_cmd(
                    "--corpus", str(corpus), "--index", str(index), "ask", QUESTION, "--json"
                )
            ),
            "assistant ask",
        )
        for _ in range(reps)
    ]
    base_cold = [
        _check(run_child(baseline_cmd(store, corpus, "ask", QUESTION)), "baseline ask")
        for _ in range(reps)
    ]
    figures = {  # figure: (our runs, the baseline's runs, the key measured)
        "index_build_s": (ours_build, base_build, "seconds"),
        "reindex_unchanged_s": (reindex, base_build, "seconds"),
        "cold_ask_s": (ours_cold, base_cold, "seconds"),
        "cold_ask_rss_mb": (ours_cold, base_cold, "rss_mb"),
    }
    for name, (ours, base, key) in figures.items():
        out[name] = {"assistant": median_of(ours, key), "baseline": median_of(base, key)}
    log("  where a cold start's time goes")
    out["cold_phases_s"] = cold_breakdown(corpus, index, reps)
    log("  warm latency")
    out.update(warm(corpus, index, store, reps, questions))
    return out


def warm(corpus: Path, index: Path, store: Path, reps: int, questions: list[str]) -> dict[str, Any]:
    """Latency in one long-lived process. Each system answers every question in a block of its
    own (the query vectors are never cached): run back to back, one question at a time, each
    system slows the other, as the two systems' worker threads share two cores
    and the caches. The order of the blocks turns with each repetition."""
    from assistant.config import RetrievalSettings, Settings
    from assistant.service import Assistant
    from evals.baseline import TOP_K, Baseline

    settings = Settings(
        corpus_dir=corpus, index_dir=index, retrieval=RetrievalSettings(query_cache=0)
    )
    assistant = Assistant(settings)
    baseline = Baseline(settings, store)
    for q in questions[:3]:  # load everything once
        assistant.ask(q)
        baseline.retrieve(q, TOP_K)

    def block(run: Callable[[str], object]) -> tuple[float, float]:
        times = []
        for q in questions:
            t0 = time.perf_counter()
            run(q)
            times.append((time.perf_counter() - t0) * 1000)
        return percentile(times, 0.5), percentile(times, 0.95)

    systems: dict[str, Callable[[str], object]] = {
        "warm_answer_ms": assistant.ask,
        "warm_retrieve_ms": assistant.search,
        "baseline_warm_retrieve_ms": lambda q: baseline.retrieve(q, TOP_K),
    }
    names = list(systems)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            figures[name].append(block(systems[name]))

    def med(pairs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(p[i] for p in pairs)

    return {
        **{name: {"p50": med(runs, 0), "p95": med(runs, 1)} for name, runs in figures.items()},
        "questions": len(questions),
    }


def synthetic_corpus(folder: Path, passages: int, seed: int = 13) -> Path:
    """Documents made by recombining the default corpus's sentences, with one planted fact."""
    from assistant.config import PROJECT_ROOT
    from assistant.corpus import scan
    from assistant.text import split_sentences

    sentences = []
    for doc in scan(PROJECT_ROOT / "corpus").documents:
        for line in doc.text.splitlines():
            if line.strip() and not line.startswith(("#", "- ")) and "http" not in line:
                sentences += [line[s:e] for s, e in split_sentences(line) if 40 <= e - s <= 260]
    rng = random.Random(seed)
    per_doc = 10
    docs = max(1, passages // per_doc)
    planted_doc = docs // 2
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        paragraphs = [" ".join(rng.sample(sentences, rng.randint(2, 3))) for _ in range(per_doc)]
        if d == planted_doc:
            paragraphs[per_doc // 2] = PLANTED
        text = "# Synthetic document\n\n" + "\n\n".join(paragraphs) + "\n"
        (folder / f"doc-{d:05d}.md").write_text(text, encoding="utf-8")
    return folder


def peak_rss_mb() -> float:
    """This process's own peak memory (VmHWM starts afresh at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def cold_child(corpus: Path, index: Path) -> dict[str, float]:
    """Runs in a fresh process: the steps of a cold `assistant ask`, in order, each timed."""
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(label: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[label] = now - mark
        mark = now

    importlib.import_module("assistant.cli")
    lap("import the command line (assistant, numpy, settings)")
    importlib.import_module("chromadb")
    lap("import chromadb (loaded when the index opens)")
    from assistant.config import Settings
    from assistant.service import Assistant

    assistant = Assistant(Settings(corpus_dir=corpus, index_dir=index))
    assistant.snapshot()
    lap("open the index: passages and documents from Chroma")
    _ = assistant.retriever().lexical  # built on first use
    lap("BM25 over the passages")
    assistant.embedder.query_encoder()
    lap(f"load the query encoder ({assistant.embedder.active_runtime})")
    assistant.ask(QUESTION)
    lap("first answer (embed, retrieve, answer, check)")
    return phases


def cold_breakdown(corpus: Path, index: Path, reps: int) -> dict[str, float]:
    """Median seconds of each step of a cold ask; what is left of the wall time is the
    interpreter starting and exiting."""
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "evals.bench", "--cold-child", str(corpus), str(index)],
            capture_output=True,
            check=True,
        )
        wall = time.perf_counter() - started
        phases = json.loads(done.stdout)
        phases["Python start and exit"] = wall - sum(phases.values())
        phases["total"] = wall
        runs.append(phases)
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def query_child(corpus: Path, index: Path, questions_file: Path) -> dict[str, Any]:
    """Runs in its own process: opens the index like a server would and answers questions."""
    from assistant.config import RetrievalSettings, Settings
    from assistant.service import Assistant

    settings = Settings(
        corpus_dir=corpus, index_dir=index, retrieval=RetrievalSettings(query_cache=0)
    )
    started = time.perf_counter()
    assistant = Assistant(settings)
    assistant.ask(QUESTION)
    open_s = time.perf_counter() - started
    questions = json.loads(questions_file.read_text())
    times = []
    for q in questions:
        t0 = time.perf_counter()
        assistant.ask(q)
        times.append((time.perf_counter() - t0) * 1000)
    found = assistant.retrieve(PLANTED_QUESTION, k=5)
    recall = any(PLANTED in sp.passage.text for sp in found)
    rss = peak_rss_mb()
    return {
        "open_s": open_s,
        "p50_ms": percentile(times, 0.5),
        "p95_ms": percentile(times, 0.95),
        "planted_recall_at_5": recall,
        "rss_mb": rss,
        "passages": len(assistant.snapshot().passages),
    }


def scaling(
    sizes: list[int],
    work: Path,
    questions: list[str],
    log: Callable[[str], None],
    reps: int = 1,
) -> list[dict[str, Any]]:
    rows = []
    qfile = work / "questions.json"
    qfile.write_text(json.dumps(questions))
    for size in sizes:
        corpus = synthetic_corpus(work / f"synthetic-{size}", size)
        index = work / f"synthetic-{size}-index"
        log(f"  {size} passages: indexing (an index kept from an earlier run is only checked)")
        env = {"ASSISTANT_PROGRESS": "1"} if sys.stderr.isatty() else {}
        build = _check(
            run_child(
                assistant_cmd("--corpus", str(corpus), "--index", str(index), "index"),
                env,
                show=True,
            ),
            "synthetic index",
        )
        runs = []
        for rep in range(reps):
            log(f"  {size} passages: querying ({rep + 1}/{reps})")
            cmd = [
                sys.executable,
                "-m",
                "evals.bench",
                "--query-child",
                str(corpus),
                str(index),
                str(qfile),
            ]
            child = _check(run_child(cmd), "query child")
            runs.append(json.loads(child["stdout"].strip().splitlines()[-1]))
        keys = ("open_s", "p50_ms", "p95_ms", "rss_mb")
        measured: dict[str, Any] = {key: statistics.median(r[key] for r in runs) for key in keys}
        measured["planted_recall_at_5"] = all(r["planted_recall_at_5"] for r in runs)
        measured["passages"] = runs[0]["passages"]
        rows.append(
            {
                "target_passages": size,
                "index_s": build["seconds"],
                "index_mb": folder_size_mb(index),
                **measured,
            }
        )
    return rows


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    from evals.report import figure

    xs = [r["passages"] for r in rows]
    with figure(path, "Latency against corpus size", size=(7, 4), legend="best") as ax:
        ax.plot(xs, [r["p50_ms"] for r in rows], marker="o", label="p50", color="#4f46e5")
        ax.plot(xs, [r["p95_ms"] for r in rows], marker="o", label="p95", color="#0d9488")
        ax.axhline(150, color="#b91c1c", linestyle="--", linewidth=1, label="p95 target (150 ms)")
        ax.set_xscale("log")
        ax.set_xlabel("passages in the index")
        ax.set_ylabel("warm answer latency (ms)")
        ax.grid(alpha=0.3)


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

    from assistant.config import PROJECT_ROOT
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
