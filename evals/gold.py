"""The gold question sets: loading and validating JSONL items."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant import InputError

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_GOLD = DATA / "gold.jsonl"
SPLITS = ("dev", "test")
SPLIT_CHOICES = (*SPLITS, "all")


@dataclass(frozen=True)
class GoldItem:
    """One evaluation question with its reference answer and the quotes it must rest on."""

    id: str
    question: str
    answer: str | None
    evidence: tuple[str, ...]
    answerable: bool
    history: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    split: str = "dev"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def references(self) -> tuple[str, ...]:
        """Every accepted answer: the SQuAD answers when there are several, else `answer`."""
        answers = self.extra.get("answers")
        if answers:
            return tuple(answers)
        return (self.answer,) if self.answer is not None else ()

    @property
    def kind(self) -> str:
        """The main tag, for per-tag breakdowns."""
        for tag in (
            "paraphrase",
            "article",
            "source",
            "two-passage",
            "multi-turn",
            "off-topic",
            "on-topic-absent",
        ):
            if tag in self.tags:
                return tag
        return self.tags[0] if self.tags else "untagged"


def _fail(path: Path, line: int, message: str) -> InputError:
    return InputError(
        f"{path}:{line}: {message}",
        'Each line must be a JSON object with "id", "question", "answer", "evidence", '
        '"answerable" and optional "history", "tags" and "split" ("dev" or "test").',
    )


def _strings(path: Path, line: int, raw: dict, key: str) -> tuple[str, ...]:
    """An optional field that is a list of non-empty strings ("history": earlier questions)."""
    value = raw.get(key) or []  # absent or null: none
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, line, f'"{key}" must be a list of non-empty strings')
    return tuple(value)


def load_gold(path: Path) -> list[GoldItem]:
    """Read and check a JSONL question set; errors name the file and line."""
    if not path.exists():
        raise InputError(f"No question file at {path}.", "Pass --questions FILE with a JSONL set.")
    items: list[GoldItem] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}.") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, n, f"not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise _fail(path, n, "not a JSON object")
        for key, kind in (("id", str), ("question", str), ("answerable", bool)):
            if not isinstance(raw.get(key), kind):
                raise _fail(path, n, f'"{key}" must be a {kind.__name__}')
        if not raw["question"].strip():
            raise _fail(path, n, '"question" is empty')
        answer = raw.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise _fail(path, n, '"answer" must be a string or null')
        evidence, history, tags = (
            _strings(path, n, raw, k) for k in ("evidence", "history", "tags")
        )
        if raw["answerable"] and (answer is None or not evidence):
            raise _fail(path, n, "answerable items need an answer and evidence")
        if not raw["answerable"] and (answer is not None or evidence):
            raise _fail(path, n, "unanswerable items have answer null and no evidence")
        split = raw.get("split", "dev")
        if split not in SPLITS:
            raise _fail(path, n, f'"split" must be "dev" or "test", not {split!r}')
        if raw["id"] in seen:
            raise _fail(path, n, f"duplicate id {raw['id']!r}")
        seen.add(raw["id"])
        items.append(
            GoldItem(
                id=raw["id"],
                question=raw["question"],
                answer=answer,
                evidence=evidence,
                answerable=raw["answerable"],
                history=history,
                tags=tags,
                split=split,
            )
        )
    if not items:
        raise InputError(f"{path} holds no questions.")
    return items


def load_items(files: Sequence[Path] = (), split: str = "all") -> list[GoldItem]:
    """The items of one split ("dev", "test" or "all") from one or more JSONL files (default:
    the project's gold set); ids must be unique across files."""
    if split not in SPLIT_CHOICES:
        raise InputError(f"Unknown split {split!r}.", "Use --split dev, test or all.")
    items: list[GoldItem] = []
    seen: set[str] = set()
    for path in files or [DEFAULT_GOLD]:
        for item in load_gold(Path(path)):
            if item.id in seen:
                raise InputError(f"Question id {item.id!r} appears in more than one file.")
            seen.add(item.id)
            items.append(item)
    chosen = [item for item in items if split == "all" or item.split == split]
    if not chosen:
        raise InputError(
            f"No {split} questions in {', '.join(str(f) for f in files or [DEFAULT_GOLD])}.",
            'Items carry "split": "dev" or "test" (absent means dev); pick another --split.',
        )
    return chosen
