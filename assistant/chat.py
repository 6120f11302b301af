"""Multi-turn conversations: history, export, and each turn asked as a question that stands
on its own (follow-ups are rewritten by assistant.followup)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from assistant.followup import Rewriter, Turn, capitalised, nothing_before, vague_reference
from assistant.scope import Scope
from assistant.service import Assistant, as_scope
from assistant.types import Answer, Query


def _names_something(turn: Turn) -> bool:
    """Whether a turn gives a later "it" something to point at: it was answered, or it
    names something (a capitalised word after the first) or borrowed a subject."""
    if not turn.answer.abstained or turn.answer.citations or turn.standalone != turn.question:
        return True
    return any(len(w) > 1 for w in capitalised(turn.question))  # "I" names nothing


class ChatSession:
    """A conversation with the assistant; each session has its own history, and its scope:
    the documents every turn, follow-ups included, is answered from (empty: all of them)."""

    def __init__(
        self,
        assistant: Assistant,
        rewriter: Rewriter | None = None,
        session_id: str | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.assistant = assistant
        self.rewriter: Rewriter = rewriter or assistant.rewriter()
        self.id = session_id or uuid.uuid4().hex[:12]
        self.turns: list[Turn] = []
        self.scope = as_scope(scope)

    def standalone(self, question: str) -> Query:
        """The question as it will be asked: a follow-up rewritten to stand on its own."""
        return self.rewriter.rewrite(question, self.turns)

    def ask(self, question: str, strict: bool = False) -> Answer:
        answer: Answer | None = None
        for event in self.ask_stream(question, strict):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None
        return answer

    def ask_stream(self, question: str, strict: bool = False) -> Iterator[str | Answer]:
        """The answer to a turn, streamed as `Assistant.ask_stream` streams it; the turn is
        recorded when the verified answer arrives."""
        text = self.assistant.clean(question)
        # "When did it start?" opening a conversation points at nothing, as it does after
        # turns that named nothing and found nothing ("Hello", or the same question again);
        # inside chosen documents, they say what "it" is.
        named = any(_names_something(t) for t in self.turns)
        pointing = vague_reference(text) if not named and not self.scope else None
        if pointing is not None:
            reply = nothing_before(pointing, earlier=bool(self.turns))
            answer = Answer(question=text, text=reply, abstained=True)
            answer.scope = self.scope
            self.turns.append(Turn(text, text, answer))
            yield answer
            return
        query = self.standalone(text)
        # Inside one chosen document, "it" is that document, unless the turn before was
        # asked inside it too (then "it" may be what that turn was about).
        subject = self._scope_subject(text)
        same_scope = bool(self.turns) and self.turns[-1].answer.scope == self.scope
        borrowed = subject if subject and not same_scope else query.borrowed or subject
        query = Query(self.assistant.clean(query.text), borrowed, scope=self.scope)
        # A follow-up wants something new: the sentences just quoted rank lower.
        if query.standalone != text and self.turns:
            quoted = {(c.passage_id, c.start) for c in self.turns[-1].answer.citations}
            query = Query(query.text, query.borrowed, frozenset(quoted), self.scope)
        for event in self.assistant.ask_stream(query, strict=strict):
            if isinstance(event, Answer):
                event.question = text
                event.standalone_question = query.standalone
                self.turns.append(Turn(text, query.standalone, event))
            yield event

    def _scope_subject(self, question: str) -> tuple[str, ...]:
        """Inside one chosen document, a question that points back at nothing ("When was it
        signed?") is about that document: its title is searched with it and kept with the
        turn, so a follow-up still knows what "it" was once the scope is cleared."""
        if len(self.scope.docs) != 1 or self.scope.kinds or vague_reference(question) is None:
            return ()
        doc = self.assistant.snapshot().docs.get(next(iter(self.scope.docs)))
        return (doc.meta.title,) if doc is not None else ()

    def reset(self) -> None:
        self.turns = []

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "scope": self.scope.to_dict(),
                "turns": [t.to_dict() for t in self.turns],
            },
            ensure_ascii=False,
            indent=1,
        )

    @classmethod
    def from_json(cls, assistant: Assistant, text: str) -> ChatSession:
        data = json.loads(text)
        session = cls(
            assistant, session_id=data.get("id"), scope=Scope.from_dict(data.get("scope"))
        )
        session.turns = [Turn.from_dict(t) for t in data.get("turns", [])]
        return session

    def export_markdown(self) -> str:
        """The conversation as Markdown: each answer with numbered references and quotes."""
        lines = ["# Conversation", ""]
        for i, turn in enumerate(self.turns, start=1):
            lines += [f"## {i}. {turn.question}", ""]
            if turn.standalone != turn.question:
                lines += [f"*Searched as:* {turn.standalone}", ""]
            lines += [turn.answer.text, ""]
            for c in turn.answer.citations:
                where = f"{c.title} ({c.kind})" + (f", {c.section}" if c.section else "")
                link = f" <{c.url}>" if c.url else ""
                lines.append(
                    f"[{c.n}] {where}{link} — passage `{c.passage_id}`, characters {c.start}–{c.end}"
                )
                lines.append(f"> {c.quote}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"
