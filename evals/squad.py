"""An external benchmark: any SQuAD 2.0 file, asked of the assistant over its own articles.

Each article becomes one Markdown document ("# Title", then its paragraphs) in a temporary
corpus, indexed through the public API. Each question becomes a gold item: unanswerable when
SQuAD marks it impossible, otherwise with every SQuAD answer kept (`extra["answers"]`) and, as
evidence, the paragraph sentence(s) holding the first answer, verbatim.

`load_squad` is the part other scripts reuse (training, article-level cross-validation):

    from evals.squad import load_squad
    squad = load_squad(Path("evals/data/squad2/train-subset.json"), articles=[0, 3])
    squad.documents, squad.items
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import Assistant, Embedder, InputError, Settings, split_sentences
from evals.evaluation import EvalRun, Gate, ProgressFactory, run_eval
from evals.gold import DATA, GoldItem

DEFAULT_SQUAD = DATA / "squad2" / "train-subset.json"
_FORMAT_HINT = (
    'Pass a SQuAD 2.0 JSON file: {"version": "v2.0", "data": [{"title", "paragraphs": '
    '[{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}], '
    '"is_impossible"}]}]}]}, such as evals/data/squad2/train-subset.json.'
)


@dataclass(frozen=True)
class SquadDocument:
    """One SQuAD article as a corpus document: `text` is the whole Markdown file."""

    id: str
    title: str
    file: str
    text: str
    article: int  # the article's index in the file
    paragraphs: int


@dataclass(frozen=True)
class SquadSet:
    """The documents and questions of a SQuAD file (or of the chosen articles)."""

    path: Path
    documents: list[SquadDocument]
    items: list[GoldItem]
    articles: tuple[int, ...]
    limit: int | None = None

    def write_corpus(self, folder: Path) -> Path:
        """Write one Markdown file per article into `folder` (created); returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        for doc in self.documents:
            (folder / doc.file).write_text(doc.text, encoding="utf-8")
        return folder


def _bad(path: Path, where: str, message: str) -> InputError:
    return InputError(f"{path} is not in SQuAD 2.0 format: {where} {message}.", _FORMAT_HINT)


def _read(path: Path) -> list[Any]:
    if not path.is_file():
        raise InputError(f"No SQuAD file at {path}.", _FORMAT_HINT)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}.", _FORMAT_HINT) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).", _FORMAT_HINT
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list) or not data["data"]:
        raise _bad(path, "the top level", 'needs a non-empty "data" list')
    articles: list[Any] = data["data"]
    return articles


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "article"


def _answer(path: Path, where: str, context: str, raw: Any) -> tuple[str, int]:
    """An answer's text and its start in the context (found by text when the offset is off)."""
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("text"), str)
        or not isinstance(raw.get("answer_start"), int)
    ):
        raise _bad(path, where, 'has an answer without "text" and integer "answer_start"')
    text, start = raw["text"], raw["answer_start"]
    if context[start : start + len(text)] != text:
        found = context.find(text)
        if found < 0 or not text.strip():
            raise _bad(path, where, f"has the answer {text!r}, which its paragraph does not hold")
        start = found
    return text, start


def _evidence(context: str, start: int, end: int) -> tuple[str, ...]:
    """The sentence(s) of the paragraph that overlap the answer span, exactly as written."""
    spans = split_sentences(context) or [(0, len(context))]
    chosen = [context[s:e].strip() for s, e in spans if s < max(end, start + 1) and e > start]
    return tuple(dict.fromkeys(q for q in chosen if q)) or (context.strip(),)


def load_squad(
    path: Path, articles: Sequence[int] | None = None, limit: int | None = None
) -> SquadSet:
    """Documents and gold items from a SQuAD 2.0 file: all articles, or those at the given
    indexes; `limit` keeps the first N questions of each article. InputError (naming the place)
    when the file is not SQuAD 2.0."""
    path = Path(path)
    data = _read(path)
    chosen = list(range(len(data))) if articles is None else list(dict.fromkeys(articles))
    for index in chosen:
        if not 0 <= index < len(data):
            raise InputError(
                f"There is no article {index}: {path} holds {len(data)} articles "
                f"(0 to {len(data) - 1}).",
                "Pass --squad-articles with indexes in that range, such as "
                f"{','.join(str(i) for i in range(min(len(data), 3)))}.",
            )
    if limit is not None and limit < 1:
        raise InputError(f"--squad-limit must be at least 1, not {limit}.")
    documents: list[SquadDocument] = []
    items: list[GoldItem] = []
    seen: set[str] = set()
    used_slugs: set[str] = set()
    for a in chosen:
        article = data[a]
        where = f"article {a}"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise _bad(path, where, 'needs a "paragraphs" list')
        title = article.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _bad(path, where, 'needs a "title"')
        title = title.replace("_", " ").strip()
        slug = _slug(title)
        while slug in used_slugs:
            slug += "-x"
        used_slugs.add(slug)
        contexts: list[str] = []
        taken = 0
        for p, paragraph in enumerate(article["paragraphs"]):
            pwhere = f"{where}, paragraph {p}"
            if (
                not isinstance(paragraph, dict)
                or not isinstance(paragraph.get("context"), str)
                or not isinstance(paragraph.get("qas"), list)
            ):
                raise _bad(path, pwhere, 'needs a "context" string and a "qas" list')
            # One line per paragraph, same length, so answer offsets still hold.
            context = paragraph["context"].replace("\r", " ").replace("\n", " ")
            if not context.strip():
                continue
            contexts.append(context)
            for q, qa in enumerate(paragraph["qas"]):
                qwhere = f"{pwhere}, question {q}"
                if not isinstance(qa, dict):
                    raise _bad(path, qwhere, "is not an object")
                qid, question = qa.get("id"), qa.get("question")
                if not isinstance(qid, str) or not isinstance(question, str):
                    raise _bad(path, qwhere, 'needs "id" and "question" strings')
                impossible = qa.get("is_impossible")
                if not isinstance(impossible, bool):
                    raise _bad(path, qwhere, 'needs "is_impossible" (true or false)')
                raw_answers = qa.get("answers")
                if not isinstance(raw_answers, list) or (not impossible and not raw_answers):
                    raise _bad(path, qwhere, 'needs an "answers" list (non-empty when possible)')
                if qid in seen:
                    raise _bad(path, qwhere, f"repeats the id {qid!r}")
                seen.add(qid)
                if limit is not None and taken >= limit:
                    continue
                taken += 1
                extra: dict[str, Any] = {"article": a, "paragraph": p, "title": title}
                if impossible:
                    extra["plausible_answers"] = [
                        x["text"]
                        for x in qa.get("plausible_answers") or []
                        if isinstance(x, dict) and isinstance(x.get("text"), str)
                    ]
                    items.append(
                        GoldItem(
                            qid,
                            question.strip(),
                            None,
                            (),
                            False,
                            tags=(title, "squad", "unanswerable"),
                            extra=extra,
                        )
                    )
                    continue
                answers = [_answer(path, qwhere, context, x) for x in raw_answers]
                text, start = answers[0]
                extra["answers"] = list(dict.fromkeys(t for t, _ in answers))
                extra["answer_starts"] = [s for _, s in answers]
                items.append(
                    GoldItem(
                        qid,
                        question.strip(),
                        text,
                        _evidence(context, start, start + len(text)),
                        True,
                        tags=(title, "squad"),
                        extra=extra,
                    )
                )
        body = "\n\n".join(contexts)
        documents.append(
            SquadDocument(
                id=slug,
                title=title,
                file=f"{slug}.md",
                text=f"# {title}\n\n{body}\n",
                article=a,
                paragraphs=len(contexts),
            )
        )
    if not items:
        raise InputError(f"{path} holds no questions in the chosen articles.", _FORMAT_HINT)
    return SquadSet(path, documents, items, tuple(chosen), limit)


def parse_articles(text: str | None) -> list[int] | None:
    """`--squad-articles 0,3,5` as indexes (None for all)."""
    if text is None or not text.strip():
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(
            f"--squad-articles {text!r}: expected article indexes separated by commas.",
            "For example: --squad-articles 0,3,5",
        ) from None


def run_squad(
    settings: Settings,
    squad: SquadSet,
    embedder: Embedder | None = None,
    out_root: Path | None = None,
    baseline: bool = True,
    gates: Sequence[Gate] = (),
    mode: str = "extractive",
    compare: Path | None = None,
    progress: ProgressFactory | None = None,
) -> EvalRun:
    """Index a loaded SQuAD set's articles in a temporary corpus, answer its questions (and the
    baseline's), and write a run folder under `out_root`/squad."""
    root = Path(out_root or settings.eval_dir) / "squad"
    with tempfile.TemporaryDirectory(prefix="assistant-squad-") as tmp:
        corpus = squad.write_corpus(Path(tmp) / "corpus")
        temp = settings.model_copy(
            update={"corpus_dir": corpus, "index_dir": Path(tmp) / "index", "chroma_url": None}
        )
        assistant = Assistant(temp, embedder)
        if progress is not None:
            assistant.index(progress=progress)
        else:
            assistant.index()
        label = f"{squad.path} (articles {', '.join(str(a) for a in squad.articles)}" + (
            f"; first {squad.limit} questions of each)" if squad.limit else ")"
        )
        run = run_eval(
            assistant,
            out_root=root,
            compare=compare,
            compare_latest=False,
            gates=gates,
            baseline=baseline,
            mode=mode,
            progress=progress,
            items=squad.items,
            source=label,
        )
    return run
