"""A question's scope: the documents it may be answered from, chosen by id and by kind, and
the check that every id and kind named is one the index knows."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant.errors import InputError

KINDS = ("article", "source")  # what a document's kind may be (DocumentMeta.kind)
# The answer when a scoped question finds no answer inside its scope: it differs from "the
# sources do not answer", since documents outside the scope may.
SCOPED_NO_ANSWER = "The chosen documents do not say."


@dataclass(frozen=True)
class Lead:
    """The passage outside a question's scope that answers it: where to look next."""

    passage_id: str
    doc_id: str
    title: str

    def to_dict(self) -> dict[str, str]:
        return {"passage_id": self.passage_id, "doc_id": self.doc_id, "title": self.title}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lead:
        return cls(str(data["passage_id"]), str(data.get("doc_id", "")), str(data["title"]))


def scoped_no_answer(lead: Lead | None) -> str:
    """What a scoped abstention says, naming the best lead outside the scope if any."""
    if lead is None:
        return f"{SCOPED_NO_ANSWER} Nor do the other documents."
    return (
        f"{SCOPED_NO_ANSWER} The best lead outside them: “{lead.title}” "
        f"(passage {lead.passage_id})."
    )


@dataclass(frozen=True)
class Scope:
    """The documents a question may be answered from: those named in `docs` and every
    document of a kind in `kinds` (article or source). An empty scope means every document."""

    docs: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, docs: Iterable[str] = (), kinds: Iterable[str] = ()) -> Scope:
        """A scope from any iterables of ids and kinds (or one id or kind as a string),
        blanks dropped."""
        docs = [docs] if isinstance(docs, str) else docs  # "brics" is one id, not five letters
        kinds = [kinds] if isinstance(kinds, str) else kinds
        return cls(
            frozenset(d.strip() for d in docs if d.strip()),
            frozenset(k.strip().lower() for k in kinds if k.strip()),
        )

    def __bool__(self) -> bool:
        return bool(self.docs or self.kinds)

    def doc_ids(self, kinds: Mapping[str, str]) -> frozenset[str]:
        """The ids this scope takes in, of the documents in `kinds` (document id -> kind)."""
        return frozenset(i for i, kind in kinds.items() if i in self.docs or kind in self.kinds)

    def resolve(self, kinds: Mapping[str, str]) -> frozenset[str] | None:
        """The ids of the documents in scope (document id -> kind of every indexed
        document), or None for an empty scope, which means all of them. InputError names the
        valid ids when an id or kind is unknown, or when no document is of a chosen kind."""
        if not self:
            return None
        unknown = sorted(self.docs - kinds.keys())
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(kinds), n=1)
            guess = f" Did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"No document with id {', '.join(repr(d) for d in unknown)} in the index.{guess}",
                f"Valid document ids: {', '.join(sorted(kinds))}.",
            )
        bad = sorted(self.kinds - set(KINDS))
        if bad:
            raise InputError(
                f"Unknown document kind {', '.join(repr(k) for k in bad)}.",
                f"A kind is one of: {', '.join(KINDS)}.",
            )
        chosen = self.doc_ids(kinds)
        if not chosen:
            raise InputError(
                f"No indexed document is of kind {', '.join(sorted(self.kinds))}.",
                f"Valid document ids: {', '.join(sorted(kinds))}.",
            )
        return chosen

    def to_dict(self) -> dict[str, list[str]]:
        return {"docs": sorted(self.docs), "kinds": sorted(self.kinds)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Scope:
        """A scope read back from `to_dict` (or an API request); missing keys are empty. Any
        other key is an InputError: a misspelt "doc" must not answer from every document."""
        data = data or {}
        if not isinstance(data, Mapping):
            raise InputError("The scope must be an object.", _SCOPE_EXAMPLE)
        unknown = sorted(str(k) for k in data if k not in ("docs", "kinds"))
        if unknown:
            raise InputError(
                f'The scope has an unknown key {unknown[0]!r}; it takes "docs" and "kinds".',
                _SCOPE_EXAMPLE,
            )
        return cls.of(_strings(data.get("docs"), "docs"), _strings(data.get("kinds"), "kinds"))


def _strings(value: object, name: str) -> list[str]:
    """A list of strings from a request; InputError for anything else."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        if any(not v.strip() for v in value):
            raise InputError(f"The scope's {name} hold an empty string.", _SCOPE_EXAMPLE)
        return list(value)
    raise InputError(f"The scope's {name} must be a list of strings.", _SCOPE_EXAMPLE)


_SCOPE_EXAMPLE = 'For example {"docs": ["power-of-siberia"], "kinds": ["source"]}.'
