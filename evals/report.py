"""The run folder: per-item results, the summary, a Markdown report and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from assistant.fsutil import atomic_write_json, atomic_write_text
from evals.metrics import LOWER_IS_BETTER, METRICS, ItemResult

LABELS = {
    "hit_at_1": "hit@1",
    "hit_at_5": "hit@5",
    "mrr": "MRR",
    "ndcg_at_10": "nDCG@10",
    "citation_recall": "citation recall",
    "citation_precision": "citation precision",
    "support_rate": "support rate",
    "answer_f1": "answer F1",
    "correct_refusal": "correct refusal",
    "over_refusal": "over-refusal",
}


PEERS = (
    ("extractive", "extractive mode", "#a5b4fc"),
    ("baseline", "LlamaIndex default", "#94a3b8"),
)


def peers(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """The systems run beside the assistant: (label, {"metrics", "ci"}, colour)."""
    return [(label, summary[key], color) for key, label, color in PEERS if summary.get(key)]


def passed(result: ItemResult) -> bool:
    """An item passes when its answer cites its evidence, or when it rightly abstains."""
    s = result.scores
    if result.item.answerable:
        return bool(s.get("citation_recall"))
    return bool(s.get("correct_refusal"))


def write_items(path: Path, results: Sequence[ItemResult]) -> None:
    lines = [json.dumps({**r.to_dict(), "passed": passed(r)}, ensure_ascii=False) for r in results]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_items(path: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            out[data["id"]] = data
    return out


def compare_items(
    current: Sequence[ItemResult], previous: dict[str, dict[str, Any]]
) -> dict[str, list[str]]:
    """Items that pass now and failed before, and the reverse."""
    newly_failing, newly_passing = [], []
    for r in current:
        before = previous.get(r.item.id)
        if before is None:
            continue
        now = passed(r)
        if before.get("passed") and not now:
            newly_failing.append(r.item.id)
        elif not before.get("passed") and now:
            newly_passing.append(r.item.id)
    return {"newly_failing": newly_failing, "newly_passing": newly_passing}


def _fmt(value: float | None, ci: Sequence[float] | None = None) -> str:
    if value is None:
        return "–"
    text = f"{value:.3f}"
    if ci:
        text += f" [{ci[0]:.2f}–{ci[1]:.2f}]"
    return text


@contextmanager
def figure(
    path: Path,
    title: str,
    size: tuple[float, float] = (10, 4.2),
    legend: Literal["lower left", "best"] = "lower left",
) -> Iterator[Any]:
    """Axes to draw on; titled, given a legend and saved to `path` as a PNG on leaving."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    try:
        yield ax
        ax.set_title(title)
        ax.legend(loc=legend)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _score_axis(ax: Any) -> None:
    """A 0..1 score axis with horizontal grid lines."""
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)


def plot_metrics(path: Path, summary: dict[str, Any]) -> None:
    """Bars for every 0..1 metric with 95% intervals, the baseline beside the assistant."""
    systems = [("assistant", summary, summary["ci"], "#4f46e5")]
    if summary.get("baseline"):
        systems.append(
            (
                "LlamaIndex default",
                summary["baseline"]["metrics"],
                summary["baseline"]["ci"],
                "#94a3b8",
            )
        )
    title = "Answer quality on the gold set (over-refusal: lower is better)"
    with figure(path, title, size=(11, 4.6)) as ax:
        width = 0.8 / len(systems)
        for j, (name, metrics, ci, color) in enumerate(systems):
            xs, ys, lo, hi = [], [], [], []
            for i, m in enumerate(METRICS):
                value = metrics.get(m)
                if value is None:
                    continue
                xs.append(i + (j - (len(systems) - 1) / 2) * width)
                ys.append(value)
                interval = ci.get(m) or (value, value)
                lo.append(max(0.0, value - interval[0]))
                hi.append(max(0.0, interval[1] - value))
            ax.bar(xs, ys, width=width, color=color, label=name, yerr=[lo, hi], capsize=3)
        ax.set_xticks(range(len(METRICS)), [LABELS[m] for m in METRICS], rotation=30, ha="right")
        _score_axis(ax)
        ax.set_ylabel("score (95% bootstrap interval)")


def plot_tags(path: Path, by_tag: dict[str, dict[str, Any]]) -> None:
    """Per item kind: retrieval and citation for answerable kinds, refusal for the others."""
    tags = list(by_tag)
    series = [
        ("hit_at_1", "#818cf8"),
        ("citation_recall", "#4f46e5"),
        ("correct_refusal", "#0d9488"),
    ]
    with figure(path, "By kind of question") as ax:
        width = 0.26
        for j, (metric, color) in enumerate(series):
            values = [by_tag[t].get(metric) for t in tags]
            xs = [i + (j - 1) * width for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.bar(xs, ys, width=width, color=color, label=LABELS[metric])
        ax.set_xticks(range(len(tags)), [f"{t}\n(n={by_tag[t]['n_items']})" for t in tags])
        _score_axis(ax)


def plot_compare(path: Path, current: dict[str, Any], previous: dict[str, Any]) -> None:
    names = [m for m in METRICS if current.get(m) is not None and previous.get(m) is not None]
    xs = range(len(names))
    with figure(path, "This run against the previous one") as ax:
        ax.bar(
            [x - 0.2 for x in xs],
            [previous[m] for m in names],
            width=0.4,
            color="#cbd5e1",
            label="previous run",
        )
        ax.bar(
            [x + 0.2 for x in xs],
            [current[m] for m in names],
            width=0.4,
            color="#4f46e5",
            label="this run",
        )
        ax.set_xticks(list(xs), [LABELS[m] for m in names], rotation=30, ha="right")
        _score_axis(ax)


def markdown(summary: dict[str, Any], results: Sequence[ItemResult]) -> str:
    """A report a person can read in a minute."""
    run = summary["run"]
    m, ci = summary, summary["ci"]
    others = peers(summary)
    prev = summary.get("compare", {}).get("previous")
    header = f"| metric | assistant, {run['mode']} [95% CI] |"
    rule = "|---|---|"
    for label, _, _ in others:
        header += f" {label} [95% CI] |"
        rule += "---|"
    if prev:
        header += " previous run |"
        rule += "---|"
    lines = [
        f"# Evaluation run {run['id']}",
        "",
        f"{run['date']} · mode **{run['mode']}** · {m['n_items']} questions from "
        f"{', '.join(run['questions'])} · settings `{run['settings_hash']}`",
        "",
        "![metrics](metrics.png)",
        "",
        header,
        rule,
    ]
    for metric in METRICS:
        row = f"| {LABELS[metric]}{' (lower is better)' if metric in LOWER_IS_BETTER else ''} | {_fmt(m.get(metric), ci.get(metric))} |"
        for _, peer, _ in others:
            row += f" {_fmt(peer['metrics'].get(metric), peer['ci'].get(metric))} |"
        if prev:
            row += f" {_fmt(prev.get(metric))} |"
        lines.append(row)
    extra = [
        ("answer length (words)", "answer_words", "{:.1f}"),
        ("latency p50 (ms)", "latency_p50_ms", "{:.1f}"),
        ("latency p95 (ms)", "latency_p95_ms", "{:.1f}"),
    ]
    for label, key, fmt in extra:
        row = f"| {label} | {fmt.format(m[key])} |"
        for _, peer, _ in others:
            row += f" {fmt.format(peer['metrics'][key])} |"
        if prev:
            row += f" {fmt.format(prev[key]) if prev.get(key) is not None else '–'} |"
        lines.append(row)
    lines += [
        "",
        "Answer length sits beside the citation scores on purpose: the baseline cites whole 1,024-token chunks, "
        "which contain the evidence more often but do not answer in a sentence.",
        "",
        "## By kind of question",
        "",
        "![by kind](tags.png)",
        "",
        "| kind | n | hit@1 | citation recall | answer F1 | correct refusal | over-refusal |",
        "|---|---|---|---|---|---|---|",
    ]
    for tag, t in summary["by_tag"].items():
        lines.append(
            f"| {tag} | {t['n_items']} | {_fmt(t['hit_at_1'])} | {_fmt(t['citation_recall'])} | {_fmt(t['answer_f1'])} | {_fmt(t['correct_refusal'])} | {_fmt(t['over_refusal'])} |"
        )
    gates = summary.get("gates", [])
    if gates:
        lines += ["", "## Gates", ""]
        for g in gates:
            mark = "pass" if g["passed"] else "**FAIL**"
            lines.append(
                f"- {mark}: {g['metric']} {g['op']} {g['threshold']} (measured {g['value']})"
            )
    comp = summary.get("compare")
    if comp:
        lines += ["", f"## Against {comp['run']}", "", "![compare](compare.png)", ""]
        lines.append(
            f"Newly failing ({len(comp['newly_failing'])}): "
            + (", ".join(comp["newly_failing"]) or "none")
        )
        lines.append("")
        lines.append(
            f"Newly passing ({len(comp['newly_passing'])}): "
            + (", ".join(comp["newly_passing"]) or "none")
        )
    failures = [r for r in results if not passed(r)]
    lines += ["", f"## Items that did not pass ({len(failures)})", ""]
    for r in failures[:25]:
        what = (
            "answered but should have abstained"
            if not r.item.answerable
            else ("abstained" if r.abstained else "cited passages lack the evidence")
        )
        lines.append(f"- `{r.item.id}` {r.item.question} — {what}")
        if r.answer and not r.abstained:
            lines.append(f"  - answer: {' '.join(r.answer.split())[:220]}")
    if len(failures) > 25:
        lines.append(f"- … and {len(failures) - 25} more in items.jsonl")
    lines.append("")
    return "\n".join(lines)


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(folder / "summary.json", summary)


def summary_table(summary: dict[str, Any]) -> str:
    """The run's figures as a plain-text table, the assistant beside the systems it ran with."""
    others = [(label.split()[0], peer["metrics"]) for label, peer, _ in peers(summary)]
    lines = [
        f"{'metric':<22}{summary['run']['mode']:>11}" + "".join(f"{name:>12}" for name, _ in others)
    ]
    rows = [(label, key, "{:.3f}") for key, label in LABELS.items()] + [
        ("latency p50 ms", "latency_p50_ms", "{:.1f}"),
        ("latency p95 ms", "latency_p95_ms", "{:.1f}"),
        ("answer words", "answer_words", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        cells = [summary.get(key)] + [m.get(key) for _, m in others]
        text = ["–" if v is None else fmt.format(v) for v in cells]
        lines.append(f"{label:<22}{text[0]:>11}" + "".join(f"{t:>12}" for t in text[1:]))
    return "\n".join(lines)
