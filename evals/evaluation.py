"""`assistant eval`: run the gold questions, score them, write the run folder, apply gates."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant import Assistant, InputError, normalize_for_match
from evals import calibration, report
from evals.gold import DEFAULT_GOLD, SPLITS, GoldItem, load_items
from evals.metrics import LOWER_IS_BETTER, METRICS, ItemResult, bootstrap_ci, by_tag, summarize
from evals.runner import run_assistant

DEFAULT_RUNS = Path(__file__).resolve().parent / "runs"
GATE_METRICS = (
    *METRICS,
    "latency_p50_ms",
    "latency_p95_ms",
    "answer_words",
    "answer_words_median",
)
ProgressFactory = Callable[[int, str], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Gate:
    """A threshold a metric must meet: `>=` for --fail-under, `<=` for --fail-over."""

    metric: str
    op: str
    threshold: float

    def check(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


def parse_gates(fail_under: Sequence[str] = (), fail_over: Sequence[str] = ()) -> list[Gate]:
    """Gates from METRIC=VALUE strings; InputError names what is wrong."""
    gates = []
    for raw, op in [(g, ">=") for g in fail_under] + [(g, "<=") for g in fail_over]:
        metric, sep, value = raw.partition("=")
        metric = metric.strip()
        flag = "--fail-under" if op == ">=" else "--fail-over"
        if not sep or metric not in GATE_METRICS:
            raise InputError(
                f"{flag} {raw!r}: expected METRIC=VALUE with METRIC one of {', '.join(GATE_METRICS)}.",
                f"For example: {flag} hit_at_1=0.8",
            )
        try:
            threshold = float(value)
        except ValueError:
            raise InputError(f"{flag} {raw!r}: {value!r} is not a number.") from None
        if op == ">=" and metric in LOWER_IS_BETTER:
            raise InputError(
                f"{metric} is better when lower; --fail-under would reward a worse result.",
                f"Use --fail-over {metric}={value} instead.",
            )
        gates.append(Gate(metric, op, threshold))
    return gates


@dataclass
class EvalRun:
    folder: Path
    summary: dict[str, Any]
    results: list[ItemResult]
    baseline: list[ItemResult] = field(default_factory=list)

    @property
    def failed_gates(self) -> list[dict[str, Any]]:
        return [g for g in self.summary.get("gates", []) if not g["passed"]]


def latest_run(root: Path, exclude: Path | None = None, split: str | None = None) -> Path | None:
    """The newest run folder under `root`; with `split`, the newest run of that split (runs
    written before splits existed count as "all")."""
    if not root.is_dir():
        return None
    runs = sorted(
        p for p in root.iterdir() if p.is_dir() and (p / "summary.json").exists() and p != exclude
    )
    if split is not None:
        runs = [
            p
            for p in runs
            if _read_json(p / "summary.json").get("run", {}).get("split", "all") == split
        ]
    return runs[-1] if runs else None


def split_summaries(results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    """The summary of each split present in the results, dev first."""
    return {
        split: summarize(chosen)
        for split in SPLITS
        if (chosen := [r for r in results if r.item.split == split])
    }


def _with_ci(results: Sequence[ItemResult]) -> tuple[dict[str, Any], dict[str, Any]]:
    summary = summarize(results)
    ci = {m: bootstrap_ci(results, m) for m in METRICS}
    return summary, ci


def _require_evidence_in_corpus(
    assistant: Assistant, items: Sequence[GoldItem], files: Sequence[Path]
) -> None:
    """InputError when the questions quote evidence and none of it is in the corpus: they are
    about other documents (the bundled set run over a corpus of one's own, say), and every
    figure would only measure that."""
    quotes = [q for item in items for q in item.evidence]
    if not quotes:
        return
    text = normalize_for_match(" ".join(p.text for p in assistant.snapshot().passages))
    if any(normalize_for_match(q) in text for q in quotes):
        return
    named = ", ".join(str(f) for f in files) or str(DEFAULT_GOLD)
    raise InputError(
        f"None of the evidence that the questions in {named} quote is in the corpus at "
        f"{assistant.settings.corpus_dir}: they are about other documents.",
        "Pass --questions FILE with questions about these documents (one JSON object per line: "
        '"id", "question", "answer", "evidence", "answerable"), or --squad FILE.'
        if not files
        else "Run it over the corpus the questions were written for (--corpus DIR).",
    )


def run_eval(
    assistant: Assistant,
    question_files: Sequence[Path] = (),
    out_root: Path = DEFAULT_RUNS,
    compare: Path | None = None,
    compare_latest: bool = True,
    gates: Sequence[Gate] = (),
    baseline: bool = True,
    mode: str = "extractive",
    progress: ProgressFactory | None = None,
    split: str = "all",
    items: Sequence[GoldItem] | None = None,
    source: str | None = None,
) -> EvalRun:
    """Run every item of the chosen split through the public API (and the baseline), write the
    run folder. `items` (with `source` naming where they came from) replaces the question files,
    as for an external benchmark."""
    if items is None:
        items = load_items(question_files, split)
        _require_evidence_in_corpus(assistant, items, question_files)
    if mode not in ("extractive", "llm"):
        raise InputError(f"Unknown mode {mode!r}.", "Use --mode extractive or --mode llm.")
    extractive = assistant
    if assistant.settings.llm.backend != "none":
        extractive = Assistant(
            assistant.settings.model_copy(
                update={"llm": assistant.settings.llm.model_copy(update={"backend": "none"})}
            ),
            assistant.embedder,
        )
    if mode == "llm" and assistant.settings.llm.backend == "none":
        raise InputError(
            "--mode llm needs a language model.",
            "Set ASSISTANT_LLM (and ASSISTANT_LLM_URL or ASSISTANT_LLM_PATH), or pass --llm.",
        )
    subject = assistant if mode == "llm" else extractive
    if compare is not None and not (compare / "items.jsonl").exists():
        raise InputError(
            f"{compare} is not an evaluation run folder (no items.jsonl).",
            "Pass a folder that `assistant eval` wrote.",
        )
    previous = compare or (latest_run(out_root, split=split) if compare_latest else None)
    assistant.ensure_index()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kind = "squad-" if source is not None else ("" if split == "all" else f"{split}-")
    name = f"{stamp}-{kind}{mode}-{assistant.settings.run_hash()[:6]}"
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = out_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with _bar(progress, len(items), f"Answering questions ({mode})") as bar:
            results = run_assistant(subject, items, bar.update)
        metrics, ci = _with_ci(results)
        summary: dict[str, Any] = {
            **metrics,
            "ci": ci,
            "by_tag": by_tag(results),
            "run": {
                "id": name,
                "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "mode": mode,
                "split": split,
                "questions": [source]
                if source is not None
                else [str(Path(f)) for f in question_files]
                or [str(DEFAULT_GOLD.relative_to(DEFAULT_GOLD.parents[2]))],
                "settings_hash": assistant.settings.run_hash(),
                "llm": {
                    "backend": assistant.settings.llm.backend,
                    "model": assistant.settings.llm.model or assistant.settings.llm.path,
                }
                if mode == "llm"
                else None,
                "index_generation": assistant.generation,
                "cpu_count": os.cpu_count(),
            },
        }
        if split == "all" and source is None:
            summary["splits"] = split_summaries(results)
        strength = calibration.summarize_strength(results, split == "all" and source is None)
        if strength is not None:
            summary["ece"] = strength["ece"]  # of the answers' strength, evals/calibration.py
            summary["strength"] = strength
        if mode == "llm":
            with _bar(progress, len(items), "Answering questions (extractive)") as bar:
                plain = run_assistant(extractive, items, bar.update)
            plain_metrics, plain_ci = _with_ci(plain)
            summary["extractive"] = {"metrics": plain_metrics, "ci": plain_ci}
            report.write_items(tmp / "extractive-items.jsonl", plain)
        base_results: list[ItemResult] = []
        if baseline:
            from evals.baseline import Baseline, run_baseline

            with _bar(progress, len(items), "LlamaIndex baseline") as bar:
                peer = Baseline(assistant.settings, out_root / ".baseline-cache")
                base_results = run_baseline(peer, items, bar.update)
            base_metrics, base_ci = _with_ci(base_results)
            summary["baseline"] = {
                "metrics": base_metrics,
                "ci": base_ci,
                "recipe": "SentenceSplitter(1024, 200) + VectorStoreIndex on Chroma, top-5, top chunk cited whole",
            }
            if "splits" in summary:
                summary["baseline"]["splits"] = split_summaries(base_results)
            report.write_items(tmp / "baseline-items.jsonl", base_results)
        if previous is not None:
            before = report.read_items(previous / "items.jsonl")
            prev_summary = _read_json(previous / "summary.json")
            summary["compare"] = {
                "run": previous.name,
                "previous": {
                    k: prev_summary.get(k)
                    for k in (
                        *METRICS,
                        "latency_p50_ms",
                        "latency_p95_ms",
                        "answer_words",
                        "answer_words_median",
                        "n_items",
                    )
                },
                **report.compare_items(results, before),
            }
        summary["gates"] = [
            {
                "metric": g.metric,
                "op": g.op,
                "threshold": g.threshold,
                "value": summary.get(g.metric),
                "passed": g.check(summary.get(g.metric)),
            }
            for g in gates
        ]
        report.write_items(tmp / "items.jsonl", results)
        report.plot_metrics(tmp / "metrics.png", summary)
        report.plot_tags(tmp / "tags.png", summary["by_tag"])
        if "strength" in summary:
            calibration.plot_reliability(tmp / "reliability.png", summary["strength"])
        if "compare" in summary:
            report.plot_compare(tmp / "compare.png", summary, summary["compare"]["previous"])
        report.write_summary(tmp, summary)
        text = report.markdown(summary, results)
        if "strength" in summary:
            text += calibration.markdown(summary["strength"])
        (tmp / "report.md").write_text(text, encoding="utf-8")
        folder = out_root / name
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EvalRun(folder, summary, results, base_results)


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _bar(progress: ProgressFactory | None, total: int, desc: str) -> AbstractContextManager[Any]:
    return progress(total, desc) if progress else _NullBar()
