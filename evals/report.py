"""The run folder: per-item results, the summary, a Markdown report and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from assistant import atomic_write_json, atomic_write_text
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
    "short_em": "short answer EM",
    "short_f1": "short answer F1",
    "contains_answer": "contains answer",
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
        names = [t if len(t) <= 18 else t[:17] + "…" for t in tags]
        ax.set_xticks(
            range(len(tags)),
            [f"{n}\n(n={by_tag[t]['n_items']})" for n, t in zip(names, tags, strict=True)],
        )
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
        if m.get(metric) is None and all(p["metrics"].get(metric) is None for _, p, _ in others):
            continue
        row = f"| {LABELS[metric]}{' (lower is better)' if metric in LOWER_IS_BETTER else ''} | {_fmt(m.get(metric), ci.get(metric))} |"
        for _, peer, _ in others:
            row += f" {_fmt(peer['metrics'].get(metric), peer['ci'].get(metric))} |"
        if prev:
            row += f" {_fmt(prev.get(metric))} |"
        lines.append(row)
    extra = [
        ("answer length (words)", "answer_words", "{:.1f}"),
        ("answer length, median (words)", "answer_words_median", "{:.1f}"),
        ("latency p50 (ms)", "latency_p50_ms", "{:.1f}"),
        ("latency p95 (ms)", "latency_p95_ms", "{:.1f}"),
    ]
    for label, key, fmt in extra:
        row = f"| {label} | {_num(fmt, m.get(key))} |"
        for _, peer, _ in others:
            row += f" {_num(fmt, peer['metrics'].get(key))} |"
        if prev:
            row += f" {fmt.format(prev[key]) if prev.get(key) is not None else '–'} |"
        lines.append(row)
    lines += [
        "",
        "Answer length sits beside the citation scores on purpose: the baseline cites whole 1,024-token chunks, "
        "which contain the evidence more often but do not answer in a sentence.",
        "",
    ]
    lines += split_tables(summary)
    kind_metrics = [
        k for k in KIND_METRICS if any(t.get(k) is not None for t in summary["by_tag"].values())
    ]
    lines += [
        "## By kind of question",
        "",
        "![by kind](tags.png)",
        "",
        "| kind | n | " + " | ".join(LABELS[k] for k in kind_metrics) + " |",
        "|---|---|" + "---|" * len(kind_metrics),
    ]
    for tag, t in summary["by_tag"].items():
        cells = " | ".join(_fmt(t.get(k)) for k in kind_metrics)
        lines.append(f"| {tag} | {t['n_items']} | {cells} |")
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


KIND_METRICS = (
    "hit_at_1",
    "citation_recall",
    "answer_f1",
    "short_f1",
    "contains_answer",
    "correct_refusal",
    "over_refusal",
)
SPLIT_NOTE = (
    "dev: the items the answerer's weights and thresholds were fitted on, so not held out; "
    "test: held out, written apart and never used for fitting. Read quality from test."
)


def _num(fmt: str, value: float | None) -> str:
    return "–" if value is None else fmt.format(value)


def _split_columns(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(column name, summary) for each split of the assistant and, when run, the baseline."""
    columns = [(split, s) for split, s in summary.get("splits", {}).items()]
    base = summary.get("baseline") or {}
    columns += [(f"baseline {split}", s) for split, s in base.get("splits", {}).items()]
    return columns


def split_tables(summary: dict[str, Any]) -> list[str]:
    """Markdown lines: every metric for each split side by side (empty without splits)."""
    columns = _split_columns(summary)
    if not columns:
        return []
    lines = [
        "## By split",
        "",
        SPLIT_NOTE,
        "",
        "| metric | " + " | ".join(f"{name} (n={s['n_items']})" for name, s in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for metric in METRICS:
        values = [s.get(metric) for _, s in columns]
        if all(v is None for v in values):
            continue
        lines.append(f"| {LABELS[metric]} | " + " | ".join(_fmt(v) for v in values) + " |")
    for label, key in (("answer words, median", "answer_words_median"),):
        lines.append(
            f"| {label} | " + " | ".join(_num("{:.1f}", s.get(key)) for _, s in columns) + " |"
        )
    return [*lines, ""]


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(folder / "summary.json", summary)


def _text_table(columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = ["metric".ljust(24) + "".join(f"{name:>14}" for name, _ in columns)]
    rows = [(label, key, "{:.3f}") for key, label in LABELS.items()] + [
        ("latency p50 ms", "latency_p50_ms", "{:.1f}"),
        ("latency p95 ms", "latency_p95_ms", "{:.1f}"),
        ("answer words", "answer_words", "{:.1f}"),
        ("answer words median", "answer_words_median", "{:.1f}"),
        ("questions", "n_items", "{}"),
    ]
    for label, key, fmt in rows:
        cells = [m.get(key) for _, m in columns]
        if all(v is None for v in cells):
            continue
        text = [_num(fmt, v) for v in cells]
        lines.append(f"{label:<24}" + "".join(f"{t:>14}" for t in text))
    return lines


def summary_table(summary: dict[str, Any]) -> str:
    """The run's figures as a plain-text table, the assistant beside the systems it ran with,
    then each split side by side."""
    others = [(label.split()[0], peer["metrics"]) for label, peer, _ in peers(summary)]
    lines = _text_table([(summary["run"]["mode"], summary), *others])
    splits = _split_columns(summary)
    if splits:
        lines += ["", "By split (read quality from test; dev was used for fitting):"]
        lines += _text_table(splits)
    return "\n".join(lines)
