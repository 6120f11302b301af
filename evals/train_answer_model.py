"""Fit the answer model (assistant/answer_model.py) and report it by article-level
cross-validation: `make train`, or `python -m evals.train_answer_model`.

Data, and only this data:
- SQuAD 2.0 training articles (evals/data/squad2/train-subset.json, CC BY-SA 4.0): each
  question is asked of an index of all the articles; the candidate sentences the assistant
  considers are labelled 1 when they contain a SQuAD answer, 0 otherwise (all of them for the
  unanswerable questions, which SQuAD wrote as near-misses);
- the gold set's `dev` split over the default corpus, labelled by the evidence quotes.
The gold `test` split is never read here.

The short-answer reader ranks the best sentences (RerankSettings.reader) and reads the short
answer that opens each answer, as in the assistant. A SQuAD question is asked of an assistant
whose reader is the one evals/train_reader.py fitted on the half of the articles that does not
hold it (kept in evals/.cache/reader-folds), so the ranking, the features and the short
answer's exact match are the reader's on unseen text; the dev split is asked with the shipped
reader, which never read the gold set.

Cross-validation holds out two SQuAD articles at a time (the two articles with unanswerable
questions fall in different folds); each fold's model is fitted on the other articles plus the
dev split and scored through the real answerer on the held-out articles. The threshold is the
highest that keeps over-refusal on the out-of-fold answerable questions, and on dev, at or below
`--max-over-refusal`. Then the model is fitted on everything and written with its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant import (
    PROJECT_ROOT,
    Assistant,
    AssistantError,
    ChatSession,
    Query,
    Search,
    Settings,
    atomic_write_text,
    normalize_for_match,
)
from assistant.answer import ExtractiveAnswerer, fits_question
from assistant.answer_model import DEFAULT_MODEL, FEATURES, AnswerModel, features
from assistant.reader import DEFAULT_READER, SpanReader, load_reader
from evals.gold import DEFAULT_GOLD, GoldItem, load_gold
from evals.metrics import best_f1, exact_match
from evals.squad import DEFAULT_SQUAD, load_squad
from evals.train_reader import FOLDS_DIR, by_fold_reader

CACHE = PROJECT_ROOT / "evals" / ".cache"
# Article indexes per fold; 4 (Zelda) and 5 (Spectre) hold the unanswerable questions.
FOLDS = ((0, 4), (1, 5), (2, 6), (3, 7), (8, 9))


@dataclass
class Example:
    """One question: its search, the candidates the model scores, their features and labels."""

    group: str  # "squad:<article>" or "dev"
    item: GoldItem
    search: Search
    candidates: list
    rows: np.ndarray
    labels: np.ndarray
    reader: SpanReader | None  # one that never read this question's article


def _norm(text: str) -> str:
    return normalize_for_match(text)


def _label(item: GoldItem, text: str) -> int:
    if not item.answerable:
        return 0
    sentence = _norm(text)
    answers = item.extra.get("answers") if item.extra else None
    if answers:
        return int(any(_norm(a) and _norm(a) in sentence for a in answers))
    quotes = [_norm(e) for e in item.evidence]
    return int(any(q in sentence or (len(sentence) > 30 and sentence in q) for q in quotes))


def pool(query: Query, candidates: Sequence, settings: Settings) -> list:
    """The candidates the answerer lets the model choose among (same rule as the answerer)."""
    fitting = [c for c in candidates if fits_question(query.text, c.text)]
    return ExtractiveAnswerer.pool(fitting, settings.answer.model_candidates, query.text)


def collect(
    assistant: Assistant,
    items: Sequence[GoldItem],
    group: str,
) -> list[Example]:
    """Each item asked of `assistant`, whose reader (settings.answer.reader_path) ranks the
    sentences and reads the short answers."""
    reader = load_reader(assistant.settings.answer.reader_path)
    out = []
    for n, item in enumerate(items):
        query = Query(item.question)
        if item.history:
            session = ChatSession(assistant)
            for earlier in item.history:
                session.ask(earlier)
            query = session.standalone(item.question)
        found = assistant.search(query)
        cands = pool(found.query, found.candidates, assistant.settings)
        if not cands:
            continue
        rows = features(
            found.query.standalone, cands, found.retriever.lexical.idf, found.context_terms
        )
        labels = np.array([_label(item, c.text) for c in cands])
        grp = group if group != "squad" else f"squad:{item.extra['article']}"
        out.append(Example(grp, item, found, cands, rows, labels, reader))
        if n % 250 == 0:
            print(f"  {group}: {n}/{len(items)}", file=sys.stderr, flush=True)
    return out


def fit(examples: Sequence[Example], threshold: float = 0.5) -> AnswerModel:
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([e.rows for e in examples])
    y = np.concatenate([e.labels for e in examples])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit((x - mean) / scale, y)
    return AnswerModel(clf.coef_[0], float(clf.intercept_[0]), mean, scale, threshold, {})


def decide(model: AnswerModel, example: Example, settings: Settings) -> dict[str, object]:
    """What the real answerer says with this model: answer text, short answer, abstained."""
    found = example.search
    answerer = ExtractiveAnswerer(
        settings.answer, model, found.retriever.lexical.idf, found.context_terms, example.reader
    )
    docs = found.retriever.snapshot.docs
    answer = answerer.answer(found.query, found.candidates, found.passages, docs)
    short = answer.short_answer.text if answer.short_answer else ""
    return {
        "abstained": answer.abstained,
        "text": " ".join(s.text for s in answer.sentences),
        "short": short,
        "confidence": answer.confidence,
    }


def score(examples: Sequence[Example], decisions: Sequence[dict[str, object]]) -> dict[str, float]:
    answerable = [(e, d) for e, d in zip(examples, decisions, strict=True) if e.item.answerable]
    impossible = [(e, d) for e, d in zip(examples, decisions, strict=True) if not e.item.answerable]

    def answers(e: Example) -> list[str]:
        return list(e.item.extra.get("answers") or [e.item.answer or ""])

    contains = [
        float(not d["abstained"] and any(_norm(a) in _norm(str(d["text"])) for a in answers(e)))
        for e, d in answerable
    ]
    em = [
        0.0 if d["abstained"] else exact_match(str(d["short"]), answers(e)) for e, d in answerable
    ]
    f1 = [
        0.0 if d["abstained"] else best_f1(str(d["short"] or d["text"]), answers(e))
        for e, d in answerable
    ]
    out = {
        "answerable": len(answerable),
        "unanswerable": len(impossible),
        "contains_answer": statistics.fmean(contains) if contains else 0.0,
        "short_em": statistics.fmean(em) if em else 0.0,
        "short_f1": statistics.fmean(f1) if f1 else 0.0,
        "over_refusal": statistics.fmean(float(bool(d["abstained"])) for _, d in answerable)
        if answerable
        else 0.0,
    }
    if impossible:
        out["correct_refusal"] = statistics.fmean(
            float(bool(d["abstained"])) for _, d in impossible
        )
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def choose_threshold(
    model: AnswerModel, examples: Sequence[Example], settings: Settings, max_over: float
) -> float:
    """The highest threshold at which the model itself declines at most `max_over` of the
    answerable questions (refusals by the answerer's other checks are not counted)."""
    unlimited = AnswerModel(model.weights, model.bias, model.mean, model.scale, 0.0, {})
    # The model's confidence on each answerable question the answerer's other checks let through.
    confidences: list[float] = []
    for e in examples:
        if not e.item.answerable:
            continue
        # Only the confidence counts here: no short answer to read.
        d = decide(unlimited, replace(e, reader=None), settings)
        if not d["abstained"] and isinstance(d["confidence"], float):
            confidences.append(d["confidence"])
    total = sum(1 for e in examples if e.item.answerable)
    best = 0.0
    for t in np.arange(0.02, 0.9, 0.01):
        answerable = total
        refused = sum(1 for c in confidences if c < t)
        if answerable and refused / answerable <= max_over:
            best = float(t)
    return round(best, 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--max-over-refusal", type=float, default=0.03)
    parser.add_argument("--limit", type=int, default=None, help="questions per article (quick)")
    parser.add_argument("--reader", type=Path, default=DEFAULT_READER)
    parser.add_argument(
        "--reader-folds",
        type=Path,
        default=FOLDS_DIR,
        help="the readers evals.train_reader fitted on half the articles each",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()

    squad = load_squad(args.squad, limit=args.limit)
    squad_root = CACHE / "squad"  # the index holds every paragraph, whatever --limit says
    corpus = squad.write_corpus(squad_root / "corpus")
    # No model while collecting: features do not depend on it.
    base = Settings(corpus_dir=corpus, index_dir=squad_root / "index")
    base.answer.use_model = False
    squad_assistant = Assistant(base)
    print(f"indexing {len(squad.documents)} SQuAD articles", file=sys.stderr)
    squad_assistant.index()
    gold_settings = Settings(corpus_dir=PROJECT_ROOT / "corpus", index_dir=CACHE / "gold-index")
    gold_settings.answer.use_model = False
    gold_settings.answer.reader_path = args.reader  # the shipped one never read the gold set
    gold_assistant = Assistant(gold_settings, squad_assistant.embedder)
    gold_assistant.index()
    dev_items = [i for i in load_gold(args.gold) if i.split == "dev"]
    print(
        f"collecting {len(squad.items)} SQuAD and {len(dev_items)} dev questions", file=sys.stderr
    )
    squad_examples = []
    for fold_assistant, fold_items in by_fold_reader(
        base, squad_assistant.embedder, squad.items, args.reader_folds
    ):
        squad_examples += collect(fold_assistant, fold_items, "squad")
    dev_examples = collect(gold_assistant, dev_items, "dev")
    settings = Settings()

    folds = []
    oof: list[tuple[Example, dict[str, object]]] = []
    for held in FOLDS:
        train = [e for e in squad_examples if int(e.group.split(":")[1]) not in held]
        test = [e for e in squad_examples if int(e.group.split(":")[1]) in held]
        if not test:
            continue
        model = fit(train + dev_examples)
        threshold = choose_threshold(model, train + dev_examples, settings, args.max_over_refusal)
        model = AnswerModel(model.weights, model.bias, model.mean, model.scale, threshold, {})
        decisions = [decide(model, e, settings) for e in test]
        oof.extend(zip(test, decisions, strict=True))
        figures = score(test, decisions)
        folds.append({"held_out_articles": list(held), "threshold": threshold, **figures})
        print(f"fold {held}: {figures}", file=sys.stderr)
    cv = score([e for e, _ in oof], [d for _, d in oof]) if oof else {}

    final = fit(squad_examples + dev_examples)
    threshold = choose_threshold(
        final, squad_examples + dev_examples, settings, args.max_over_refusal
    )
    info = {
        "fitted_on": [
            f"{args.squad.name}: {len(squad.documents)} SQuAD 2.0 training articles, "
            f"{len(squad_examples)} questions (CC BY-SA 4.0)",
            f"{args.gold.name}: dev split, {len(dev_examples)} questions",
        ],
        "never_read": "the gold set's test split",
        "command": "make train  (python -m evals.train_answer_model)",
        "threshold_rule": f"highest at which the model declines <= {args.max_over_refusal} of the answerable training questions",
        "cross_validation": {"folds": folds, "pooled": cv},
        "trained": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
    }
    model = AnswerModel(final.weights, final.bias, final.mean, final.scale, threshold, info)
    atomic_write_text(args.out, json.dumps(model.to_json(), indent=2) + "\n")
    print(json.dumps({"threshold": threshold, "cross_validation": cv, "features": FEATURES}))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except AssistantError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
