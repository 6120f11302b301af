"""Whether an answer's strength means what it says: reliability bins, the expected calibration
error and the reliability plot.

An answer is *right* when its first cited sentence (the one the answer model chose and scored)
holds a gold evidence quote, lies inside one, or holds a reference answer; an answer to a
question the sources do not answer is never right. Abstentions carry no strength and are left
out (assistant/strength.py says why).

The expected calibration error (ECE) puts the answers with a strength into 10 equal-width bins
of strength, [0, 0.1), [0.1, 0.2), ... [0.9, 1.0], and averages |share right - mean strength|
over the bins, each weighted by its share of the answers: 0 is perfect, and an answerer that
says 0.9 and is right half the time scores 0.4. On a few dozen answers even a perfectly
calibrated answerer scores well above 0, so each ECE comes with `ece_if_calibrated`: the mean
ECE of answers with the same strengths whose rightness is drawn with exactly those
probabilities (500 draws, fixed seed). An ECE near that figure is as good as the sample shows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant import normalize_for_match
from evals.gold import SPLITS, GoldItem
from evals.metrics import ItemResult, contains_answer, contains_evidence

BINS = 10


def answer_right(item: GoldItem, quote: str) -> bool:
    """Whether a quoted sentence answers the item: it holds (or, when longer than a few words,
    lies inside) a gold evidence quote, or holds a reference answer."""
    if not item.answerable or not quote:
        return False
    if contains_evidence(quote, item.evidence):
        return True
    norm = normalize_for_match(quote)
    if len(norm) > 30 and any(norm in normalize_for_match(e) for e in item.evidence):
        return True
    return contains_answer(quote, item.references)


def first_quote(result: ItemResult) -> str:
    """The sentence cited first in an answer ("" when it cites nothing)."""
    numbers = [n for s in result.sentences for n in s.get("citations", [])]
    by_n = {c["n"]: c.get("quote") or "" for c in result.citations}
    return by_n.get(numbers[0], "") if numbers else ""


def outcomes(results: Sequence[ItemResult]) -> list[tuple[float, bool]]:
    """(strength, right) for every answer given that carries a strength."""
    return [
        (r.strength, answer_right(r.item, first_quote(r)))
        for r in results
        if not r.abstained and r.strength is not None
    ]


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> dict[str, Any]:
    """The ECE of (strength, right) pairs, with the count, mean strength and share right of
    each equal-width bin (empty bins are listed with n = 0)."""
    rows: list[dict[str, Any]] = []
    ece = 0.0
    total = len(pairs)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        # A strength of exactly 1.0 falls in the last bin.
        inside = [(p, y) for p, y in pairs if lo <= p < hi or (b == bins - 1 and p == hi)]
        row: dict[str, Any] = {"lo": round(lo, 4), "hi": round(hi, 4), "n": len(inside)}
        if inside:
            strength = sum(p for p, _ in inside) / len(inside)
            right = sum(y for _, y in inside) / len(inside)
            row.update(strength=round(strength, 4), right=round(right, 4))
            ece += len(inside) / total * abs(right - strength)
        rows.append(row)
    return {
        "n": total,
        "ece": round(ece, 4) if total else None,
        "mean_strength": round(sum(p for p, _ in pairs) / total, 4) if total else None,
        "right": round(sum(y for _, y in pairs) / total, 4) if total else None,
        "bins": rows,
    }


def ece_if_calibrated(strengths: Sequence[float], rounds: int = 500, seed: int = 7) -> float:
    """The mean ECE of a perfectly calibrated answerer with these strengths (see above)."""
    rng = random.Random(seed)
    draws = [reliability([(p, rng.random() < p) for p in strengths])["ece"] for _ in range(rounds)]
    return round(sum(draws) / rounds, 4)


def _with_floor(pairs: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    out = reliability(pairs)
    out["ece_if_calibrated"] = ece_if_calibrated([p for p, _ in pairs])
    return out


def summarize_strength(results: Sequence[ItemResult], by_split: bool) -> dict[str, Any] | None:
    """The reliability of all answers with a strength and, with `by_split`, of each split;
    None when no answer carries one (no answer model, or no calibration for it)."""
    pairs = outcomes(results)
    if not pairs:
        return None
    out = _with_floor(pairs)
    if by_split:
        out["splits"] = {
            split: _with_floor(chosen)
            for split in SPLITS
            if (chosen := outcomes([r for r in results if r.item.split == split]))
        }
    return out


def _curves(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    splits = stats.get("splits") or {}
    return list(splits.items()) if len(splits) > 1 else [("all answers", stats)]


def plot_reliability(path: Path, stats: dict[str, Any]) -> None:
    """Share right against mean strength per bin (dots sized by count), with the diagonal."""
    from evals.report import figure

    with figure(path, "Reliability of answer strength", size=(6, 5.2), legend="best") as ax:
        ax.plot([0, 1], [0, 1], color="#9ca3af", linestyle="--", label="perfectly calibrated")
        for name, curve in _curves(stats):
            filled = [b for b in curve["bins"] if b["n"]]
            xs = [b["strength"] for b in filled]
            ys = [b["right"] for b in filled]
            sizes = [20 + 6 * b["n"] for b in filled]
            (line,) = ax.plot(xs, ys, marker="", label=f"{name} (ECE {curve['ece']:.3f})")
            ax.scatter(xs, ys, s=sizes, color=line.get_color(), alpha=0.8, zorder=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("strength (calibrated probability), mean per bin")
        ax.set_ylabel("share of answers right")
        ax.grid(alpha=0.3)


def markdown(stats: dict[str, Any]) -> str:
    """The report's section on strength: ECE per split and the bins."""
    lines = [
        "",
        "## Answer strength",
        "",
        "Expected calibration error (ECE) of the answers' strength: 10 equal-width bins, "
        "|share right − mean strength| weighted by each bin's share of answers. An answer is "
        "right when its first cited sentence holds the gold evidence or the reference answer; "
        "abstentions carry no strength.",
        "",
        "![reliability](reliability.png)",
        "",
        "ECE if calibrated: the mean ECE of a perfectly calibrated answerer with the same "
        "strengths, the floor that sampling alone sets on this many answers.",
        "",
        "| answers | n | ECE | ECE if calibrated | mean strength | share right |",
        "|---|---|---|---|---|---|",
    ]
    for name, curve in [("all", stats), *(stats.get("splits") or {}).items()]:
        lines.append(
            f"| {name} | {curve['n']} | {curve['ece']:.3f} | {curve['ece_if_calibrated']:.3f} | "
            f"{curve['mean_strength']:.3f} | {curve['right']:.3f} |"
        )
    lines += ["", "| strength bin | n | mean strength | share right |", "|---|---|---|---|"]
    for b in stats["bins"]:
        if b["n"]:
            lines.append(
                f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['n']} | {b['strength']:.3f} | {b['right']:.3f} |"
            )
    return "\n".join(lines) + "\n"
