"""Fit the map from the answer model's probability to an answer's strength (`make calibrate`).

Every question is asked through the real assistant (a chat session, history first), with the
shipped answer model; each answer given is one point: the model's probability for the sentence
it quoted, and whether that answer is right (evals/calibration.py `answer_right`: its first
cited sentence holds the gold evidence or a reference answer). Abstentions carry no strength
and are not points. The data:
- the gold set's `dev` split over the default corpus (the questions the assistant is for);
- the SQuAD 2.0 training subset (evals/data/squad2/train-subset.json), each article a document.
The gold `test` split is never read here.

Cross-validation: the dev points fall in five folds by item, the SQuAD points in five folds of
two articles (as in evals/train_answer_model.py); each fold is scored by a map fitted without
it. The figures, the data and the answer model's fingerprint are written beside the map in
assistant/models/strength.json, which assistant/strength.py reads at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant import (
    PROJECT_ROOT,
    Assistant,
    AssistantError,
    ChatSession,
    Settings,
    atomic_write_text,
)
from assistant.answer_model import load_model
from assistant.strength import DEFAULT_CALIBRATION, METHODS, Calibration, logit
from evals.calibration import answer_right, reliability
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.squad import DEFAULT_SQUAD, load_squad
from evals.train_reader import by_fold_reader

CACHE = PROJECT_ROOT / "evals" / ".cache"
DEV_FOLDS = 5
SQUAD_FOLDS = ((0, 4), (1, 5), (2, 6), (3, 7), (8, 9))  # as in train_answer_model.py
# Which points the shipped map is fitted on, and how, unless --method and --data say: the pair
# with the lowest cross-validated ECE on the dev split (see "cross_validation" and "chosen_by"
# in strength.json), never chosen by the test split.
CHOSEN_BY = "the lowest cross-validated ECE on the dev split among the methods and data tried"


@dataclass(frozen=True)
class Point:
    """One answer given: where it came from, its fold, the model's probability, right or not."""

    source: str  # "dev" or "squad"
    fold: str
    raw: float
    right: bool


def collect(assistant: Assistant, items: Sequence[GoldItem], source: str) -> list[Point]:
    """Ask every item (history first) and keep the answers that carry a model probability."""
    points = []
    for n, item in enumerate(items):
        session = ChatSession(assistant)
        for earlier in item.history:
            session.ask(earlier)
        answer = session.ask(item.question)
        if answer.abstained or answer.confidence is None or not answer.sentences:
            continue
        cited = answer.sentences[0].citations
        first = answer.citation(cited[0]) if cited else None
        right = answer_right(item, first.quote if first else "")
        if source == "dev":
            fold = f"dev:{n % DEV_FOLDS}"
        else:
            article = int(item.extra["article"])
            fold = f"squad:{next(i for i, f in enumerate(SQUAD_FOLDS) if article in f)}"
        points.append(Point(source, fold, answer.confidence, right))
        if n % 250 == 0:
            print(f"  {source}: {n}/{len(items)}", file=sys.stderr, flush=True)
    return points


def fit(points: Sequence[Point], method: str, model: str) -> Calibration:
    """A map fitted on the points: Platt scaling on the logit, or isotonic regression."""
    x = np.array([p.raw for p in points])
    y = np.array([int(p.right) for p in points])
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1e4, max_iter=1000)
        clf.fit(logit(x).reshape(-1, 1), y)
        return Calibration("platt", model, float(clf.coef_[0][0]), float(clf.intercept_[0]))
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    knots_x = tuple(float(v) for v in iso.X_thresholds_)
    knots_y = tuple(float(v) for v in iso.y_thresholds_)
    return Calibration("isotonic", model, x=knots_x, y=knots_y)


def cross_validate(
    points: Sequence[Point], use: set[str], method: str, model: str
) -> dict[str, dict[str, Any]]:
    """Out-of-fold reliability on each source: every fold scored by a map fitted on the
    points of the `use` sources outside that fold."""
    scored: dict[str, list[tuple[float, bool]]] = {}
    for fold in sorted({p.fold for p in points}):
        train = [p for p in points if p.source in use and p.fold != fold]
        held = [p for p in points if p.fold == fold]
        calibration = fit(train, method, model)
        for p in held:
            scored.setdefault(p.source, []).append((calibration.apply(p.raw), p.right))
    out = {}
    for source, pairs in sorted(scored.items()):
        stats = reliability(pairs)
        raw = reliability([(p.raw, p.right) for p in points if p.source == source])
        out[source] = {k: stats[k] for k in ("n", "ece", "mean_strength", "right")}
        out[source]["ece_uncalibrated"] = raw["ece"]
        out[source]["brier"] = round(sum((p - y) ** 2 for p, y in pairs) / len(pairs), 4)
    return out


def _index(assistant: Assistant) -> None:
    """Bring a cached index up to date; one that cannot be (built with other settings, say)
    is built again."""
    try:
        assistant.index()
    except AssistantError:
        assistant.index(rebuild=True)


def gather(args: argparse.Namespace) -> list[Point]:
    """The points of the dev split and (unless --data dev) of the SQuAD subset."""
    settings = Settings(corpus_dir=PROJECT_ROOT / "corpus", index_dir=CACHE / "gold-index")
    gold_assistant = Assistant(settings)
    _index(gold_assistant)
    dev_items = [i for i in load_gold(args.gold) if i.split == "dev"]
    print(f"asking {len(dev_items)} dev questions", file=sys.stderr)
    points = collect(gold_assistant, dev_items, "dev")
    if args.data == "dev":
        return points
    squad = load_squad(args.squad, limit=args.limit)
    root = CACHE / "squad"
    corpus = squad.write_corpus(root / "corpus")
    squad_assistant = Assistant(
        Settings(corpus_dir=corpus, index_dir=root / "index"), gold_assistant.embedder
    )
    print(f"indexing {len(squad.documents)} SQuAD articles", file=sys.stderr)
    _index(squad_assistant)
    print(f"asking {len(squad.items)} SQuAD questions", file=sys.stderr)
    for fold_assistant, items in by_fold_reader(
        squad_assistant.settings, squad_assistant.embedder, squad.items
    ):
        points += collect(fold_assistant, items, "squad")
    return points


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION)
    parser.add_argument("--method", choices=METHODS, default=None, help="default: " + CHOSEN_BY)
    parser.add_argument("--data", choices=("dev", "both"), default=None, help="as --method")
    parser.add_argument("--limit", type=int, default=None, help="SQuAD questions per article")
    parser.add_argument("--points", type=Path, default=None, help="reuse points saved here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    model = load_model()
    if model is None:
        raise AssistantError("No answer model to calibrate.", "Run `make train` first.")
    if args.points is not None and args.points.exists():
        points = [Point(**p) for p in json.loads(args.points.read_text(encoding="utf-8"))]
    else:
        points = gather(args)
        if args.points is not None:
            args.points.write_text(json.dumps([p.__dict__ for p in points]), encoding="utf-8")
    cv = {
        method: {
            data: cross_validate(
                points, {"dev"} if data == "dev" else {"dev", "squad"}, method, model.fingerprint
            )
            for data in (("dev", "both") if any(p.source == "squad" for p in points) else ("dev",))
        }
        for method in METHODS
    }
    tried = [(m, d) for m in cv for d in cv[m]]
    method, data = min(tried, key=lambda md: cv[md[0]][md[1]]["dev"]["ece"])
    method, data = args.method or method, args.data or data
    use = {"dev"} if data == "dev" else {"dev", "squad"}
    final = fit([p for p in points if p.source in use], method, model.fingerprint)
    counts = {s: sum(p.source == s for p in points) for s in sorted(use)}
    info = {
        "fitted_on": [
            f"{args.gold.name}: dev split, {counts.get('dev', 0)} answers given",
            *(
                [f"{args.squad.name}: SQuAD 2.0 training articles, {counts['squad']} answers given"]
                if "squad" in use
                else []
            ),
        ],
        "right_means": "the answer's first cited sentence holds gold evidence or a reference answer",
        "never_read": "the gold set's test split",
        "command": "make calibrate  (python -m evals.calibrate_strength)",
        "cross_validation": cv,
        "data": data,
        "chosen_by": "--method/--data" if args.method or args.data else CHOSEN_BY,
        "fitted": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
    }
    calibration = Calibration(
        final.method, final.model, final.a, final.b, final.x, final.y, info=info
    )
    atomic_write_text(args.out, json.dumps(calibration.to_json(), indent=2) + "\n")
    print(json.dumps({"method": method, "data": data, "cross_validation": cv}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except AssistantError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
