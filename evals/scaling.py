"""The scaling run: synthetic corpora of growing size, each indexed and then queried from a
fresh process, with the latency plotted against corpus size."""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.bench_runs import QUESTION, assistant_cmd, checked, percentile, run_child

PLANTED = (
    "The Halvorsen ledger records that 4,817 crates of Yunnan tea reached Kyakhta on 3 March 1911."
)
PLANTED_QUESTION = (
    "How many crates of Yunnan tea reached Kyakhta according to the Halvorsen ledger?"
)


def synthetic_corpus(folder: Path, passages: int, seed: int = 13) -> Path:
    """Documents made by recombining the default corpus's sentences, with one planted fact."""
    from assistant import PROJECT_ROOT, scan, split_sentences

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


def query_child(corpus: Path, index: Path, questions_file: Path) -> dict[str, Any]:
    """Runs in its own process: opens the index like a server would and answers questions."""
    from assistant import Assistant, RetrievalSettings, Settings

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
        "passages": len(assistant.passages()),
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
        build = checked(
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
            child = checked(run_child(cmd), "query child")
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
