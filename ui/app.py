"""The Gradio web app: the layout of its tabs and which callback each element triggers, and
the server that serves it. The callbacks are in `ui.handlers`, the markup in `ui.markup`.

Built from library calls only: retrieval, answers and conversations live in `assistant`.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from gradio.events import Dependency

from assistant import Assistant, InputError
from ui import markup

# The app's messages, also read from here by the tests that drive the server.
from ui.admission import BUSY as BUSY
from ui.files import PdfFiles
from ui.handlers import EVAL_RUNNING as EVAL_RUNNING
from ui.handlers import Handlers
from ui.inputs import MAX_MESSAGE
from ui.openai_api import OpenAIApi
from ui.sessions import STORAGE_KEY

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES = [
    "How large was bilateral trade between Russia and China in 2023?",
    "What was the Treaty of Aigun?",
    "Do Russia and China have a formal defense pact?",
    "What is the Middle Corridor?",
]
LOADING = "Loading the conversation…"
FOCUS_QUESTION = "() => document.querySelector('#question textarea')?.focus()"


def build_app(assistant: Assistant) -> gr.Blocks:
    """The Blocks app over one assistant; each browser session gets its own conversation."""
    handlers = Handlers(assistant)
    # Each callback is bound once: Gradio groups events for its queue by the callback's
    # identity, so the Enter key and the Ask button share one group, as they share one function.
    respond, find_support, show_passage = (
        handlers.respond,
        handlers.find_support,
        handlers.show_passage,
    )
    theme = gr.themes.Soft(
        primary_hue="indigo",
        font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "monospace"],
    )
    sources = assistant.sources()
    doc_titles = [(s.document.id, handlers.titles[s.document.id]) for s in sources]
    with gr.Blocks(title="Cited answers", analytics_enabled=False) as app:
        session_state = gr.State(None)
        # The key of this browser's conversation, kept on the server (ui.sessions).
        browser_key = gr.BrowserState(None, storage_key=STORAGE_KEY, secret=handlers.store.secret())
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
                        # The scope: the documents the conversation is answered from.
                        with gr.Row(equal_height=True):
                            scope_docs = gr.Dropdown(
                                choices=[(markup.short_title(t, 70), i) for i, t in doc_titles],
                                multiselect=True,
                                label="Answer from these documents (none chosen: all)",
                                elem_id="scope-docs",
                                scale=4,
                            )
                            scope_kinds = gr.CheckboxGroup(
                                choices=[("The article", "article"), ("Sources", "source")],
                                label="…and every document of a kind",
                                elem_id="scope-kinds",
                                scale=2,
                            )
                        scope_status = gr.HTML(elem_id="scope-status")
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            show_label=False,
                            height=520,
                            elem_id="chat",
                            sanitize_html=True,
                            feedback_options=None,
                            # No copy icon: it copies a message's raw content, the answer's
                            # HTML, and Gradio offers no plain text to copy instead.
                            buttons=[],
                            placeholder="Ask a question about the article or the subjects it relies on.",
                        )
                        with gr.Row():
                            # Closed until the page has loaded its conversation (see app.load
                            # below): a question asked before that would be wiped by the load.
                            box = gr.Textbox(
                                placeholder=LOADING,
                                show_label=False,
                                max_length=MAX_MESSAGE,
                                scale=5,
                                elem_id="question",
                                interactive=False,
                            )
                            send = gr.Button(
                                "Ask", variant="primary", scale=1, elem_id="ask", interactive=False
                            )
                        with gr.Row():
                            new = gr.Button("New conversation", size="sm", elem_id="new")
                            # Opened once there is a turn to export (see `kept` below).
                            download = gr.DownloadButton(
                                "Export (Markdown)", size="sm", elem_id="export", interactive=False
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
                    choices=[(handlers.titles[s.document.id], s.document.id) for s in sources],
                    label="Read a document",
                    elem_id="pick-document",
                )
                document_view = gr.HTML(handlers.open_document(None), elem_id="document-view")
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
                            placeholder="e.g. " + next((p.id for p in assistant.passages()), ""),
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

        remember = handlers.remember

        def kept(event: Dependency) -> None:
            """After a turn or a new conversation: the browser keeps the conversation's key
            (new or forked), and the Export button holds the conversation as it now is: a
            click downloads the file the button holds then, before any click event runs."""
            event.then(remember, session_state, browser_key, api_visibility="private").then(
                handlers.export_button, session_state, download, api_visibility="private"
            )

        kept(box.submit(respond, chat_inputs, outputs, api_name="ask", preprocess=False))
        kept(send.click(respond, chat_inputs, outputs, api_visibility="private", preprocess=False))
        # Closed while an answer is written: its file would not hold that turn yet.
        gr.on(
            [box.submit, send.click],
            handlers.close_export,
            None,
            download,
            queue=False,
            api_visibility="private",
        )
        # The chat's own trash icon empties the chat in the browser: it starts a new
        # conversation too, or the old one would stay in the panel, the context and the store.
        kept(
            gr.on(
                [new.click, chatbot.clear],
                handlers.new_conversation,
                [session_state],
                [chatbot, sources_html, session_state],
                api_name="new_conversation",
            )
        )
        # The picker scopes the conversation kept in the session state (its follow-ups too).
        for picker in (scope_docs, scope_kinds):
            picker.change(
                handlers.set_scope,
                [scope_docs, scope_kinds, session_state],
                [scope_status, session_state],
                api_visibility="private",
                preprocess=False,
            )
        # A reload, or a restart of the server, brings the browser's conversation back.
        app.load(
            handlers.restore,
            browser_key,
            [chatbot, sources_html, session_state, browser_key],
            api_visibility="private",
        ).then(  # the Export button holds the conversation brought back
            handlers.export_button, session_state, download, api_visibility="private"
        ).then(  # the picker shows the scope of the conversation brought back
            handlers.shown_scope,
            session_state,
            [scope_docs, scope_kinds, scope_status],
            api_visibility="private",
        ).then(  # only now may a question be asked (also when the load failed)
            handlers.open_question,
            None,
            [box, send],
            api_visibility="private",
        ).then(None, None, None, js=FOCUS_QUESTION)
        # The button already holds the file (see `kept`): its click returns that same file,
        # for API clients, or warns when there is nothing to export.
        download.click(handlers.export, [session_state], download, api_name="export")
        # Lookups read their raw input (preprocess=False) and check it themselves, so that a
        # wrong type or a megabyte id gets a short message, not a component's error.
        pick.change(
            handlers.open_document, pick, document_view, api_name="document", preprocess=False
        )

        brief_button.click(
            handlers.open_brief,
            brief_button,
            [tabs, pick],
            js="() => window.assistantBrief || ''",
            api_visibility="private",
            preprocess=False,
        )
        eval_outputs = [eval_status, metrics_plot, tags_plot, eval_report]
        run_button.click(
            handlers.run_evaluation,
            with_baseline,
            eval_outputs,
            api_name="evaluate",
            preprocess=False,
            concurrency_limit=2,  # a second run is refused by run_evaluation, not queued
        )
        app.load(handlers.latest_report, None, eval_outputs, api_visibility="private")
        find.click(find_support, [claim, k], support_view, api_name="cite", preprocess=False)
        claim.submit(
            find_support, [claim, k], support_view, api_visibility="private", preprocess=False
        )
        show.click(show_passage, pid, context_view, api_name="passage", preprocess=False)
        gr.api(handlers.answer_json, api_name="answer")
        pid.submit(show_passage, pid, context_view, api_visibility="private", preprocess=False)
    app.assistant_theme = theme  # type: ignore[attr-defined]
    app.assistant_admission = handlers.admission  # type: ignore[attr-defined]
    return app


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
    """Start the server, with the OpenAI-compatible API under /v1; returns the app and its
    local URL."""
    if concurrency is not None:
        assistant.settings.web.workers = concurrency
    app = build_app(assistant)
    # Gradio lets more requests in than may wait, so that `Admission` decides who computes,
    # who waits and who hears "busy" (at once, cheaply); the queue's own limit is a last resort.
    settings = assistant.settings
    app.queue(
        default_concurrency_limit=settings.web.workers + settings.web.waiting + 16,
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
        # The /v1 routes take the chat's slots; they check a bearer key, not the login.
        app_kwargs={
            "routes": OpenAIApi(
                assistant,
                app.assistant_admission,  # type: ignore[attr-defined]
                login=auth is not None,
            ).routes()
            # The corpus PDFs that citations link to, by document id, behind the login.
            + PdfFiles(assistant, login=auth is not None).routes()
        },
        # Only the evaluation reports are served from disk; never the index or the corpus.
        allowed_paths=[str(Path(assistant.settings.eval_dir).resolve())],
        ssr_mode=False,
    )
    if block:
        app.block_thread()
    return app, url
