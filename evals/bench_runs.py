"""The benchmark's measurements in fresh processes: wall time and peak memory of a command, and
the side-by-side run (index build, re-index, cold start and its steps, warm latency) of this
project against LlamaIndex's default recipe."""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


def checked(run: dict[str, Any], what: str) -> dict[str, Any]:
    """The run, or stop the benchmark with its output when it failed."""
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
            checked(
                run_child(assistant_cmd("--corpus", str(corpus), "--index", str(index), "index")),
                "assistant index",
            )
        )
        log(f"  build {i + 1}/{reps}: baseline")
        base_build.append(
            checked(run_child(baseline_cmd(work / f"base-{i}", corpus, "build")), "baseline build")
        )
    index, store = work / "index-0", work / "base-0"
    reindex = [
        checked(
            run_child(assistant_cmd("--corpus", str(corpus), "--index", str(index), "index")),
            "re-index",
        )
        for _ in range(reps)
    ]
    log("  cold starts")
    ours_cold = [
        checked(
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
        checked(run_child(baseline_cmd(store, corpus, "ask", QUESTION)), "baseline ask")
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
    from assistant import Assistant, RetrievalSettings, Settings
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
    from assistant import Assistant, Settings

    assistant = Assistant(Settings(corpus_dir=corpus, index_dir=index))
    assistant.snapshot()
    lap("open the index: passages and documents from Chroma")
    _ = assistant.retriever().lexical  # built on first use
    lap("BM25 over the passages")
    assistant.embedder.encoder()
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
