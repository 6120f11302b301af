"""What the web app does when it is used: the chat, the export, the document reader, the
citation lookup and the evaluation, each a method that `ui.app` wires to its elements.

Built from library calls only: retrieval, answers and conversations live in `assistant`.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from assistant import (
    Answer,
    Assistant,
    AssistantError,
    ChatSession,
    InputError,
    Scope,
    atomic_write_text,
)
from ui import markup
from ui.admission import BUSY, Admission
from ui.inputs import MAX_ID, as_id, as_text, kind_of, web_text
from ui.sessions import SessionStore, as_key, chat_messages, new_key, user_message

Message = dict[str, str]
ASK = "Ask a question… (Enter to send)"
EVAL_RUNNING = "An evaluation is already running; its report appears here when it finishes."
# What `run_evaluation` shows: the status line, the two plots and the report text.
ReportView = tuple[str, str | None, str | None, str]


@dataclass
class WebSession:
    """One browser session: its conversation, and the chat as the server has shown it. The
    history a client sends is never read back: what it shows is rebuilt from this."""

    chat: ChatSession
    messages: list[Message] = field(default_factory=list)
    # A browser's conversation is kept on disk under `key` (ui.sessions), at `revision`;
    # an API client's has no key and lives only as long as its connection.
    key: str | None = None
    revision: int = 0
    # The Markdown file last exported, and the conversation (id, turns) it holds.
    export: tuple[tuple[str, int], str] | None = None


class Handlers:
    """The callbacks over one assistant. All of them share one `Admission`, so answers,
    API answers and evaluation runs take the same slots."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        settings = assistant.settings
        self.admission = Admission(settings.web.workers, settings.web.waiting, settings.web.wait_s)
        self._evaluation = threading.Lock()
        self.titles = {s.document.id: s.document.meta.title for s in assistant.sources()}
        self.kinds = {s.document.id: s.document.meta.kind for s in assistant.sources()}
        self.store = SessionStore.for_settings(settings)

    def panel(self, session: ChatSession) -> str:
        """The sources panel beside the chat: every passage the conversation has cited."""
        return markup.sources_panel(session.turns, _passage_texts(self.assistant, session))

    # The chat

    def respond(
        self, message: object, client_history: object, state: WebSession | None
    ) -> Iterator[tuple[list[Message], str, str, WebSession]]:
        # `client_history` is what the client says its chat shows. It is never read: the chat
        # shown is the server's own record, so a forged history can neither inject markup
        # nor smuggle turns (and what they cite) into the conversation.
        text = as_text(message, "The question").strip()
        state = state or WebSession(ChatSession(self.assistant))
        session, history = state.chat, state.messages
        if not text:
            yield list(history), self.panel(session), "", state
            return
        history.append(user_message(text))
        history.append(
            {"role": "assistant", "content": '<span class="thinking">Searching the sources…</span>'}
        )
        yield list(history), self.panel(session), "", state
        with self.admission.slot() as admitted:
            if not admitted:
                history[-1] = {"role": "assistant", "content": markup.error_html(BUSY)}
                yield list(history), self.panel(session), text, state
                return
            turns = len(session.turns)
            for shown_history, shown_panel, box_text in self._answer(session, text, history):
                yield list(shown_history), shown_panel, box_text, state
            if len(session.turns) > turns and state.key is not None:
                state.key, state.revision = self.store.save(state.key, session, state.revision)

    def _answer(
        self, session: ChatSession, text: str, history: list[Message]
    ) -> Iterator[tuple[list[Message], str, str]]:
        answer: Answer | None = None
        draft = ""
        try:
            for event in session.ask_stream(text):
                if isinstance(event, Answer):
                    answer = event
                    continue
                draft += event
                history[-1] = {
                    "role": "assistant",
                    "content": f'<div class="draft">{markup.esc(draft)}</div><span class="thinking">checking against the sources…</span>',
                }
                yield history, self.panel(session), ""
        except InputError as exc:
            message = web_text(exc)
            history[-1] = {"role": "assistant", "content": markup.error_html(message)}
            yield history, self.panel(session), ""
            return
        except AssistantError as exc:
            history[-1] = {"role": "assistant", "content": markup.error_html(exc.message)}
            yield history, self.panel(session), ""
            return
        assert answer is not None
        turn = len(session.turns) - 1
        if not draft:  # extractive answers arrive whole: show them sentence by sentence
            for shown_sentences in range(1, len(answer.sentences)):
                history[-1] = {
                    "role": "assistant",
                    "content": markup.answer_html(answer, turn, shown_sentences),
                }
                yield history, self.panel(session), ""
        history[-1] = {"role": "assistant", "content": markup.answer_html(answer, turn)}
        yield history, self.panel(session), ""

    def new_conversation(self, state: WebSession | None) -> tuple[list[Message], str, WebSession]:
        kept = state is not None and state.key is not None  # a browser's: kept, under a new key
        fresh = WebSession(ChatSession(self.assistant), key=new_key() if kept else None)
        if state is not None:  # the picker still shows the scope: the new conversation keeps it
            fresh.chat.scope = state.chat.scope
        return [], self.panel(fresh.chat), fresh

    def set_scope(
        self, docs: object, kinds: object, state: WebSession | None
    ) -> tuple[str, WebSession]:
        """The picker's documents and kinds become the conversation's scope: the next turn
        and every follow-up are answered from them (none chosen: from every document)."""
        state = state or WebSession(ChatSession(self.assistant))
        try:
            scope = Scope.from_dict({"docs": docs, "kinds": kinds})
            chosen = scope.resolve(self.kinds)
        except InputError as exc:
            return markup.error_html(web_text(exc)), state
        state.chat.scope = scope
        return _scope_html(chosen, self.titles), state

    def shown_scope(self, state: WebSession | None) -> tuple[list[str], list[str], str]:
        """What the picker shows for a conversation: its documents, its kinds, the line."""
        scope = state.chat.scope if state is not None else Scope()
        try:
            chosen = scope.resolve(self.kinds)
        except InputError:  # a document removed from the index since: all of them, then
            scope = Scope()
            chosen = None
            if state is not None:
                state.chat.scope = scope
        return sorted(scope.docs), sorted(scope.kinds), _scope_html(chosen, self.titles)

    def restore(self, value: object) -> tuple[list[Message], str, WebSession, str]:
        """On page load: the conversation under the key the browser keeps, or a fresh one
        (and a new key, when what the browser holds is not a key)."""
        key = as_key(value) or new_key()
        stored = self.store.load(self.assistant, key)
        if stored is None:
            state = WebSession(ChatSession(self.assistant), key=key)
        else:
            messages = chat_messages(stored.chat.turns)
            state = WebSession(stored.chat, messages, key=key, revision=stored.revision)
        return list(state.messages), self.panel(state.chat), state, key

    def open_question(self) -> tuple[Any, Any]:
        """The question box and the Ask button, opened once the page has loaded."""
        return (
            gr.Textbox(interactive=True, placeholder=ASK),
            gr.Button(interactive=True),
        )

    def remember(self, state: WebSession | None) -> Any:
        """The key for the browser to keep: it changes on a new conversation or a fork."""
        return state.key if state is not None and state.key is not None else gr.skip()

    def exported(self, state: WebSession | None) -> str | None:
        """The conversation as a Markdown file, None before its first turn: the Export
        button's value, set whenever the conversation changes, as the button downloads the
        file it holds at the click. Written once per state of the conversation."""
        if state is None or not state.chat.turns:
            return None
        session = state.chat
        shown = (session.id, len(session.turns))
        if state.export is None or state.export[0] != shown:
            # One file per conversation, rewritten as it grows (Gradio serves a copy of it).
            folder = Path(state.export[1]).parent if state.export else None
            if folder is None or not folder.is_dir():
                folder = Path(tempfile.mkdtemp(prefix="assistant-export-"))
            path = folder / f"conversation-{session.id}.md"
            atomic_write_text(path, session.export_markdown())
            state.export = (shown, str(path))
        return state.export[1]

    def export_button(self, state: WebSession | None) -> Any:
        """The Export button after the conversation changed: holding its file, and open
        only when there is something to export."""
        path = self.exported(state)
        return gr.DownloadButton(value=path, interactive=path is not None)

    def close_export(self) -> Any:
        """The Export button while an answer is written, which its file would miss."""
        return gr.DownloadButton(interactive=False)

    def export(self, state: WebSession | None) -> str | None:
        """The Export button's click and the /export route: the file `exported` holds, or a
        warning while there is nothing to export."""
        path = self.exported(state)
        if path is None:
            gr.Warning("Nothing to export yet: ask a question first.")
        return path

    def answer_json(
        self, question: str, docs: list[str] | None = None, kinds: list[str] | None = None
    ) -> dict[str, Any]:
        """One stateless question, answered as `assistant ask --json` prints it; `docs` and
        `kinds` keep it to those documents."""
        question = as_text(question, "The question")
        with self.admission.slot() as admitted:
            if not admitted:
                return {"error": BUSY, "busy": True}
            try:
                scope = Scope.from_dict({"docs": docs, "kinds": kinds})
                return self.assistant.ask(question, scope=scope).to_dict()
            except AssistantError as exc:
                return {"error": exc.message, "hint": exc.hint}

    # The sources and the citation lookup

    def open_document(self, value: object) -> str:
        doc_id = as_id(value, "The document id")
        if doc_id is None:
            return markup.error_html(
                f"That is not a document id (ids are at most {MAX_ID} characters)."
            )
        if not doc_id:
            return '<div class="panel-empty">Choose a document to read it with its passages marked.</div>'
        try:
            doc = self.assistant.document(doc_id)
        except AssistantError as exc:
            return markup.error_html(exc.message)
        spans = [(p.id, p.start, p.end) for p in self.assistant.passages(list(doc.passage_ids))]
        return markup.document_html(doc, sorted(spans, key=lambda x: x[1]))

    def open_brief(self, value: object) -> tuple[Any, Any]:
        """A citation card's "see the brief" link: the Sources tab, reading that document."""
        doc_id = str(value or "").split("#", 1)[0]
        if doc_id not in self.titles:
            return gr.skip(), gr.skip()
        return gr.Tabs(selected="sources"), doc_id

    def find_support(self, value: object, k: object) -> str:
        claim = as_text(value, "The claim")
        # The range first: NaN and infinities fail it before int() could raise on them.
        if isinstance(k, bool) or not isinstance(k, int | float) or not 1 <= k <= 10 or k != int(k):
            raise gr.Error(
                f"The number of passages must be a whole number from 1 to 10, not {str(k)[:40]!r}.",
                title="Bad request",
            )
        try:
            results = self.assistant.cite(claim, k=int(k))
        except AssistantError as exc:
            return markup.error_html(web_text(exc))
        titles = {s.document.id: s.document.meta.title for s in self.assistant.sources()}
        return markup.support_html(claim.strip(), results, titles)

    def show_passage(self, value: object) -> str:
        passage_id = as_id(value, "The passage id")
        if passage_id is None:
            return markup.error_html(
                f"That is not a passage id (ids are at most {MAX_ID} characters)."
            )
        if not passage_id:
            return markup.error_html("Paste a passage id, for example one shown under an answer.")
        try:
            return markup.context_html(self.assistant.context(passage_id, 500))
        except AssistantError as exc:
            return markup.error_html(web_text(exc))

    # The evaluation

    def latest_report(self) -> ReportView:
        from evals.evaluation import latest_run

        folder = latest_run(Path(self.assistant.settings.eval_dir))
        if folder is None:
            return "No evaluation has run yet. Press **Run evaluation**.", None, None, ""
        return _report_view(folder)

    def run_evaluation(
        self,
        with_baseline: object,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> ReportView:
        if with_baseline is not None and not isinstance(with_baseline, bool):
            raise gr.Error(
                f"with_baseline must be true or false, not {kind_of(with_baseline)}.",
                title="Bad request",
            )
        # One run at a time, refused at once rather than queued; and a run is work like an
        # answer: it takes one of the same slots, or hears that the assistant is busy.
        if not self._evaluation.acquire(blocking=False):
            return EVAL_RUNNING, None, None, ""
        try:
            with self.admission.slot() as admitted:
                if not admitted:
                    return BUSY, None, None, ""
                return self._evaluate(bool(with_baseline), progress)
        finally:
            self._evaluation.release()

    def _evaluate(self, with_baseline: bool, progress: gr.Progress) -> ReportView:
        from evals.evaluation import run_eval

        class _Bar:
            def __init__(self, total: int, desc: str) -> None:
                self.total, self.desc, self.done = total, desc, 0
                progress((0, total), desc=desc)

            def update(self, n: int = 1) -> None:
                self.done += n
                progress((self.done, self.total), desc=self.desc)

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        try:
            run = run_eval(
                self.assistant,
                out_root=Path(self.assistant.settings.eval_dir),
                baseline=with_baseline,
                progress=_Bar,
            )
        except AssistantError as exc:
            return markup.error_html(exc.message), None, None, ""
        return _report_view(run.folder)


def _scope_html(chosen: frozenset[str] | None, titles: dict[str, str]) -> str:
    """The line under the picker: which documents the conversation answers from."""
    if chosen is None:
        return '<div class="scope-status">Answering from every document.</div>'
    names = ", ".join(markup.esc(titles.get(d, d)) for d in sorted(chosen))
    n = len(chosen)
    return (
        f'<div class="scope-status">Answering from {n} document{"s" if n != 1 else ""}: '
        f"{names}</div>"
    )


def _passage_texts(assistant: Assistant, session: ChatSession) -> dict[str, tuple[str, int]]:
    cited = [c.passage_id for turn in session.turns for c in turn.answer.citations]
    return {p.id: (p.text, p.start) for p in assistant.passages(cited)}


def _report_view(folder: Path) -> ReportView:
    """The status line, the two plots and the report text of one run folder."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    status = (
        f"Run **{folder.name}**: hit@1 {summary['hit_at_1']:.2f}, citation recall "
        f"{summary['citation_recall']:.2f}, correct refusal {summary['correct_refusal']:.2f}, "
        f"over-refusal {summary['over_refusal']:.2f}, p50 {summary['latency_p50_ms']:.0f} ms."
    )
    text = (folder / "report.md").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("!["))
    metrics = folder / "metrics.png"
    tags = folder / "tags.png"
    return (
        status,
        str(metrics) if metrics.exists() else None,
        str(tags) if tags.exists() else None,
        text,
    )
