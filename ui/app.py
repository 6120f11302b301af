"""The Gradio web app: chat with cited answers, the sources, and citation lookup.

Built from library calls only: retrieval, answers and conversations live in `assistant`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from assistant.chat import ChatSession
from assistant.errors import AssistantError, InputError
from assistant.service import Assistant
from ui import markup

ASSETS = Path(__file__).resolve().parent / "assets"
MAX_MESSAGE = 2000
MAX_ID = 200  # passage and document ids are far shorter; longer input is refused unread
EXAMPLES = [
    "How large was bilateral trade between Russia and China in 2023?",
    "What was the Treaty of Aigun?",
    "Do Russia and China have a formal defense pact?",
    "What is the Middle Corridor?",
]

Message = dict[str, str]
BUSY = "The assistant is busy answering other questions right now. Please ask again in a moment."
EVAL_RUNNING = "An evaluation is already running; its report appears here when it finishes."
# Test hook: while the file this names exists, admitted work waits before it starts (and the
# file's `.held` sibling says so), so that tests can fill every slot without racing the clock.
HOLD_ENV = "ASSISTANT_WEB_HOLD"


def _hold_if_asked() -> None:
    path = os.environ.get(HOLD_ENV)
    if not path or not os.path.exists(path):
        return
    with open(f"{path}.held", "a", encoding="utf-8") as marker:
        marker.write(f"{threading.get_ident()}\n")
    while os.path.exists(path):
        time.sleep(0.02)


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", bool: "true or false", str: "text"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _text(value: object, what: str) -> str:
    """A text input as text; anything else sent to the API is refused with a message."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{what} must be text, not {_kind(value)}.", title="Bad request")
    return value


def _id(value: object, what: str) -> str | None:
    """An id as text, or None when it is too long to be one (it is then not read at all)."""
    text = _text(value, what).strip()
    return text if len(text) <= MAX_ID else None


@dataclass
class WebSession:
    """One browser session: its conversation, and the chat as the server has shown it. The
    history a client sends is never read back: what it shows is rebuilt from this."""

    chat: ChatSession
    messages: list[Message] = field(default_factory=list)


class Admission:
    """At most `workers` answers are computed at once; up to `waiting` more questions wait up
    to `wait_s` seconds for a turn; beyond that the asker is told the assistant is busy,
    instead of a request failing or hanging."""

    def __init__(self, workers: int, waiting: int, wait_s: float) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._waiting = 0
        self.waiting_limit = waiting
        self.wait_s = wait_s

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Yields True when the caller may compute an answer, False when it should say busy."""
        if self._slots.acquire(blocking=False):
            try:
                _hold_if_asked()
                yield True
            finally:
                self._slots.release()
            return
        with self._lock:
            full = self._waiting >= self.waiting_limit
            if not full:
                self._waiting += 1
        if full:
            yield False
            return
        try:
            acquired = self._slots.acquire(timeout=self.wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            yield False
            return
        try:
            _hold_if_asked()
            yield True
        finally:
            self._slots.release()


def _passage_texts(assistant: Assistant, session: ChatSession) -> dict[str, tuple[str, int]]:
    snapshot = assistant.snapshot()
    out = {}
    for turn in session.turns:
        for c in turn.answer.citations:
            p = snapshot.by_id.get(c.passage_id)
            if p is not None:
                out[c.passage_id] = (p.text, p.start)
    return out


def build_app(assistant: Assistant) -> gr.Blocks:
    """The Blocks app over one assistant; each browser session gets its own conversation."""
    settings = assistant.settings
    admission = Admission(settings.web_workers, settings.web_waiting, settings.web_wait_s)
    evaluation = threading.Lock()
    theme = gr.themes.Soft(
        primary_hue="indigo",
        font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
    )

    def panel(session: ChatSession) -> str:
        return markup.sources_panel(session.turns, _passage_texts(assistant, session))

    def respond(
        message: object, client_history: object, state: WebSession | None
    ) -> Iterator[tuple[list[Message], str, str, WebSession]]:
        # `client_history` is what the client says its chat shows. It is never read: the chat
        # shown is the server's own record, so a forged history can neither inject markup
        # nor smuggle turns (and what they cite) into the conversation.
        text = _text(message, "The question").strip()
        state = state or WebSession(ChatSession(assistant))
        session, history = state.chat, state.messages
        if not text:
            yield list(history), panel(session), "", state
            return
        shown = text if len(text) <= 300 else text[:300] + "…"
        history.append({"role": "user", "content": markup.esc(shown)})
        history.append(
            {"role": "assistant", "content": '<span class="thinking">Searching the sources…</span>'}
        )
        yield list(history), panel(session), "", state
        with admission.slot() as admitted:
            if not admitted:
                history[-1] = {"role": "assistant", "content": markup.error_html(BUSY)}
                yield list(history), panel(session), text, state
                return
            for shown_history, shown_panel, box_text, _ in _answer(session, text, history):
                yield list(shown_history), shown_panel, box_text, state

    def _answer(
        session: ChatSession, text: str, history: list[Message]
    ) -> Iterator[tuple[list[Message], str, str, ChatSession]]:
        from assistant.types import Answer

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
                yield history, panel(session), "", session
        except InputError as exc:
            message = f"{exc.message} {exc.hint or ''}".strip()
            history[-1] = {"role": "assistant", "content": markup.error_html(message)}
            yield history, panel(session), "", session
            return
        except AssistantError as exc:
            history[-1] = {"role": "assistant", "content": markup.error_html(exc.message)}
            yield history, panel(session), "", session
            return
        assert answer is not None
        turn = len(session.turns) - 1
        if not draft:  # extractive answers arrive whole: show them sentence by sentence
            for shown_sentences in range(1, len(answer.sentences)):
                history[-1] = {
                    "role": "assistant",
                    "content": markup.answer_html(answer, turn, shown_sentences),
                }
                yield history, panel(session), "", session
        history[-1] = {"role": "assistant", "content": markup.answer_html(answer, turn)}
        yield history, panel(session), "", session

    def new_conversation(state: WebSession | None) -> tuple[list[Message], str, WebSession]:
        fresh = WebSession(ChatSession(assistant))
        return [], panel(fresh.chat), fresh

    def export(state: WebSession | None) -> str | None:
        session = state.chat if state is not None else None
        if session is None or not session.turns:
            gr.Warning("Nothing to export yet: ask a question first.")
            return None
        folder = Path(tempfile.mkdtemp(prefix="assistant-export-"))
        path = folder / f"conversation-{session.id}.md"
        path.write_text(session.export_markdown(), encoding="utf-8")
        return str(path)

    def open_document(value: object) -> str:
        doc_id = _id(value, "The document id")
        if doc_id is None:
            return markup.error_html(
                f"That is not a document id (ids are at most {MAX_ID} characters)."
            )
        if not doc_id:
            return '<div class="panel-empty">Choose a document to read it with its passages marked.</div>'
        try:
            doc = assistant.document(doc_id)
        except AssistantError as exc:
            return markup.error_html(exc.message)
        snap = assistant.snapshot()
        spans = [(pid, snap.by_id[pid].start, snap.by_id[pid].end) for pid in doc.passage_ids]
        return markup.document_html(doc, sorted(spans, key=lambda x: x[1]))

    def find_support(value: object, k: object) -> str:
        claim = _text(value, "The claim")
        # The range first: NaN and infinities fail it before int() could raise on them.
        if isinstance(k, bool) or not isinstance(k, int | float) or not 1 <= k <= 10 or k != int(k):
            raise gr.Error(
                f"The number of passages must be a whole number from 1 to 10, not {str(k)[:40]!r}.",
                title="Bad request",
            )
        try:
            results = assistant.cite(claim, k=int(k))
        except AssistantError as exc:
            return markup.error_html(f"{exc.message} {exc.hint or ''}".strip())
        titles = {s.document.id: s.document.meta.title for s in assistant.sources()}
        return markup.support_html(claim.strip(), results, titles)

    def show_passage(value: object) -> str:
        passage_id = _id(value, "The passage id")
        if passage_id is None:
            return markup.error_html(
                f"That is not a passage id (ids are at most {MAX_ID} characters)."
            )
        if not passage_id:
            return markup.error_html("Paste a passage id, for example one shown under an answer.")
        try:
            return markup.context_html(assistant.context(passage_id, 500))
        except AssistantError as exc:
            return markup.error_html(f"{exc.message} {exc.hint or ''}".strip())

    def latest_report() -> tuple[str, str | None, str | None, str]:
        from evals.evaluation import latest_run

        folder = latest_run(Path(assistant.settings.eval_dir))
        if folder is None:
            return "No evaluation has run yet. Press **Run evaluation**.", None, None, ""
        return _report_view(folder)

    def run_evaluation(
        with_baseline: object,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[str, str | None, str | None, str]:
        if with_baseline is not None and not isinstance(with_baseline, bool):
            raise gr.Error(
                f"with_baseline must be true or false, not {_kind(with_baseline)}.",
                title="Bad request",
            )
        # One run at a time, refused at once rather than queued; and a run is work like an
        # answer: it takes one of the same slots, or hears that the assistant is busy.
        if not evaluation.acquire(blocking=False):
            return EVAL_RUNNING, None, None, ""
        try:
            with admission.slot() as admitted:
                if not admitted:
                    return BUSY, None, None, ""
                return _evaluate(bool(with_baseline), progress)
        finally:
            evaluation.release()

    def _evaluate(
        with_baseline: bool, progress: gr.Progress
    ) -> tuple[str, str | None, str | None, str]:
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
                assistant,
                out_root=Path(assistant.settings.eval_dir),
                baseline=with_baseline,
                progress=_Bar,
            )
        except AssistantError as exc:
            return markup.error_html(exc.message), None, None, ""
        return _report_view(run.folder)

    sources = assistant.sources()
    titles = {s.document.id: s.document.meta.title for s in sources}
    with gr.Blocks(title="Cited answers", analytics_enabled=False) as app:
        session_state = gr.State(None)
        gr.HTML(
            '<div class="app-head"><h1>Ask the article and its sources</h1>'
            f"<p>Every sentence of an answer cites the passage it comes from. {len(sources)} documents: "
            f"{markup.esc(markup.short_title(sources[0].document.meta.title, 90)) if sources else ''} "
            "and its background sources.</p></div>"
        )
        # Pressed by a citation card's "see the brief" link (assets/notes.html).
        brief_button = gr.Button(visible="hidden", elem_id="open-brief")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            show_label=False,
                            height=520,
                            elem_id="chat",
                            sanitize_html=True,
                            feedback_options=None,
                            buttons=["copy"],
                            placeholder="Ask a question about the article or the subjects it relies on.",
                        )
                        with gr.Row():
                            box = gr.Textbox(
                                placeholder="Ask a question… (Enter to send)",
                                show_label=False,
                                max_length=MAX_MESSAGE,
                                scale=5,
                                elem_id="question",
                                autofocus=True,
                            )
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                        with gr.Row():
                            new = gr.Button("New conversation", size="sm", elem_id="new")
                            download = gr.DownloadButton(
                                "Export (Markdown)", size="sm", elem_id="export"
                            )
                        gr.Examples(EXAMPLES, inputs=box, label="Try")
                    with gr.Column(scale=2, min_width=300):
                        gr.Markdown("### Sources of the answers")
                        sources_html = gr.HTML(
                            markup.sources_panel([], {}), elem_id="sources-panel"
                        )
            with gr.Tab("Sources", id="sources"):
                gr.Dataframe(
                    value=markup.documents_rows(sources),
                    headers=["id", "title", "kind", "author / publisher", "date", "passages"],
                    interactive=False,
                    wrap=True,
                    elem_id="documents",
                )
                pick = gr.Dropdown(
                    choices=[(titles[s.document.id], s.document.id) for s in sources],
                    label="Read a document",
                    elem_id="pick-document",
                )
                document_view = gr.HTML(open_document(None), elem_id="document-view")
            with gr.Tab("Citation lookup", id="lookup"):
                with gr.Row():
                    with gr.Column():
                        claim = gr.Textbox(
                            label="Claim",
                            placeholder="Paste a claim to find the passages that support it",
                            max_length=MAX_MESSAGE,
                            elem_id="claim",
                        )
                        k = gr.Slider(1, 10, value=5, step=1, label="Passages")
                        find = gr.Button("Find support", variant="primary", elem_id="find")
                        support_view = gr.HTML(elem_id="support-view")
                    with gr.Column():
                        pid = gr.Textbox(
                            label="Passage id",
                            placeholder="e.g. "
                            + (
                                assistant.snapshot().passages[0].id
                                if assistant.snapshot().passages
                                else ""
                            ),
                            elem_id="passage-id",
                        )
                        show = gr.Button("Show in context", elem_id="show")
                        context_view = gr.HTML(elem_id="context-view")

            with gr.Tab("Evals", id="evals"):
                gr.Markdown(
                    "Runs the gold questions (evals/data/gold.jsonl) through the same API as the "
                    "chat and scores retrieval, citations, answers and abstention."
                )
                with gr.Row():
                    with_baseline = gr.Checkbox(
                        label="Also run LlamaIndex's default recipe (slower)", value=False
                    )
                    run_button = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                eval_status = gr.Markdown(elem_id="eval-status")
                with gr.Row():
                    metrics_plot = gr.Image(label="Metrics", type="filepath", interactive=False)
                    tags_plot = gr.Image(
                        label="By kind of question", type="filepath", interactive=False
                    )
                eval_report = gr.Markdown(elem_id="eval-report")

        outputs = [chatbot, sources_html, box, session_state]
        # The /ask API keeps its (message, history) signature; the history is a plain JSON
        # value that respond() ignores (see WebSession).
        client_history = gr.JSON(visible=False)
        chat_inputs = [box, client_history, session_state]
        box.submit(respond, chat_inputs, outputs, api_name="ask", preprocess=False)
        send.click(respond, chat_inputs, outputs, api_visibility="private", preprocess=False)
        new.click(
            new_conversation,
            [session_state],
            [chatbot, sources_html, session_state],
            api_name="new_conversation",
        )
        download.click(export, [session_state], download, api_name="export")
        # Lookups read their raw input (preprocess=False) and check it themselves, so that a
        # wrong type or a megabyte id gets a short message, not a component's error.
        pick.change(open_document, pick, document_view, api_name="document", preprocess=False)

        def open_brief(value: object) -> tuple[Any, Any]:
            doc_id = str(value or "").split("#", 1)[0]
            if doc_id not in titles:
                return gr.skip(), gr.skip()
            return gr.Tabs(selected="sources"), doc_id

        brief_button.click(
            open_brief,
            brief_button,
            [tabs, pick],
            js="() => window.assistantBrief || ''",
            api_visibility="private",
            preprocess=False,
        )
        eval_outputs = [eval_status, metrics_plot, tags_plot, eval_report]
        run_button.click(
            run_evaluation,
            with_baseline,
            eval_outputs,
            api_name="evaluate",
            preprocess=False,
            concurrency_limit=2,  # a second run is refused by run_evaluation, not queued
        )
        app.load(latest_report, None, eval_outputs, api_visibility="private")
        find.click(find_support, [claim, k], support_view, api_name="cite", preprocess=False)
        claim.submit(
            find_support, [claim, k], support_view, api_visibility="private", preprocess=False
        )
        show.click(show_passage, pid, context_view, api_name="passage", preprocess=False)

        def answer_json(question: str) -> dict[str, Any]:
            """One stateless question, answered as `assistant ask --json` prints it."""
            question = _text(question, "The question")
            with admission.slot() as admitted:
                if not admitted:
                    return {"error": BUSY, "busy": True}
                try:
                    return assistant.ask(question).to_dict()
                except AssistantError as exc:
                    return {"error": exc.message, "hint": exc.hint}

        gr.api(answer_json, api_name="answer")
        pid.submit(show_passage, pid, context_view, api_visibility="private", preprocess=False)
    app.assistant_theme = theme  # type: ignore[attr-defined]
    return app


def _report_view(folder: Path) -> tuple[str, str | None, str | None, str]:
    """The status line, the two plots and the report text of one run folder."""
    import json

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


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:password` from ASSISTANT_AUTH, or None when unset."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise InputError(
            "ASSISTANT_AUTH must look like user:password.",
            "Set it as ASSISTANT_AUTH=alice:secret, or unset it to serve without login.",
        )
    return user, password


def launch(
    assistant: Assistant,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    concurrency: int | None = None,
    queue_size: int = 512,
    block: bool = True,
) -> tuple[gr.Blocks, str]:
    """Start the server; returns the app and its local URL."""
    if concurrency is not None:
        assistant.settings.web_workers = concurrency
    app = build_app(assistant)
    # Gradio lets more requests in than may wait, so that `Admission` decides who computes,
    # who waits and who hears "busy" (at once, cheaply); the queue's own limit is a last resort.
    settings = assistant.settings
    app.queue(
        default_concurrency_limit=settings.web_workers + settings.web_waiting + 16,
        max_size=queue_size,
    )
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        theme=app.assistant_theme,  # type: ignore[attr-defined]
        css_paths=[ASSETS / "style.css"],
        head_paths=[ASSETS / "head.html", ASSETS / "notes.html"],
        footer_links=[],
        max_file_size="1mb",
        # Only the evaluation reports are served from disk; never the index or the corpus.
        allowed_paths=[str(Path(assistant.settings.eval_dir).resolve())],
        ssr_mode=False,
    )
    if block:
        app.block_thread()
    return app, url
