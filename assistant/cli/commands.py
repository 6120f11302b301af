"""The core commands: index, ask, chat, sources, show, cite and add."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from assistant.cli.context import emit_json, get_assistant, print_index_report, progress_bar, ready
from assistant.errors import InputError
from assistant.scope import KINDS, Scope
from assistant.views import context_view, support_view

if TYPE_CHECKING:
    from assistant.chat import ChatSession
    from assistant.service import Assistant


@click.command()
@click.option(
    "--rebuild", is_flag=True, help="Build from scratch in a new folder, then switch to it."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def index(ctx: click.Context, rebuild: bool, as_json: bool) -> None:
    """Index the corpus: embed new and edited documents, drop deleted ones.

    \b
    Examples:
      assistant index            # incremental: only what changed is embedded
      assistant index --rebuild  # from scratch; the old index serves until the new one is done
    """
    report = get_assistant(ctx).index(rebuild=rebuild, progress=progress_bar)
    if as_json:
        emit_json(
            {
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
                "passages": report.passages,
                "embedded": report.embedded,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        print_index_report(report)


def scope_options(command: Callable[..., None]) -> Callable[..., None]:
    """--doc and --kind: the documents a command answers from."""
    command = click.option(
        "--kind",
        "kinds",
        multiple=True,
        type=click.Choice(KINDS, case_sensitive=False),
        help="Answer from every document of this kind (repeatable).",
    )(command)
    return click.option(
        "--doc",
        "docs",
        multiple=True,
        metavar="ID",
        help="Answer from this document (repeatable; `assistant sources` lists the ids).",
    )(command)


def chosen_scope(assistant: Assistant, docs: tuple[str, ...], kinds: tuple[str, ...]) -> Scope:
    """The scope the options name; InputError (exit 2) naming the valid ids if one is unknown."""
    scope = Scope.from_dict({"docs": list(docs), "kinds": list(kinds)})  # a blank id: exit 2
    scope.resolve({s.document.id: s.document.meta.kind for s in assistant.sources()})
    return scope


@click.command()
@click.argument("question")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the answer, citations and passages as JSON."
)
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(1, 50),
    default=None,
    help="Passages to list with the answer (default 5). The answer is chosen among the sentences "
    "of the wider set the reranker reads, so it may cite a passage below these; it is listed too.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="With a model: drop sentences the sources do not support (default: mark them).",
)
@scope_options
@click.pass_context
def ask(
    ctx: click.Context,
    question: str,
    as_json: bool,
    top_k: int | None,
    strict: bool,
    docs: tuple[str, ...],
    kinds: tuple[str, ...],
) -> None:
    """Answer QUESTION from the corpus, citing the source of every sentence.

    \b
    With a language model configured (--llm), the answer streams as it is written and is then
    checked sentence by sentence against the passages it cites. --doc and --kind keep the
    answer to the chosen documents.
    Examples:
      assistant ask "Which treaties ceded territory to the Russian Empire?"
      assistant ask "What share of Russia's imports does China account for?" --json -k 8
      assistant ask "Which currencies settle the trade?" --doc russia-china-trade --kind article
      assistant --llm llama-cpp --llm-path model.gguf ask "What is the Middle Corridor?" --strict
    """
    from assistant.cli.terminal import answer_text
    from assistant.types import Answer

    get_assistant(ctx).clean(question)  # reject bad input before any index work
    assistant = ready(ctx)
    scope = chosen_scope(assistant, docs, kinds)
    answer: Answer | None = None
    streamed = False
    for event in assistant.ask_stream(question, k=top_k, strict=strict, scope=scope):
        if isinstance(event, Answer):
            answer = event
        elif not as_json and sys.stdout.isatty():
            click.echo(event, nl=False)
            streamed = True
    assert answer is not None
    if as_json:
        emit_json(answer.to_dict())
        return
    if streamed:
        click.echo("\n\nChecked against the sources:")
    click.echo(answer_text(answer))


_EXPORTED: set[Path] = set()  # the files this process's chats wrote


def export(session: ChatSession, name: str, err: bool = False) -> None:
    """/export: the conversation as Markdown in `name` (conversation.md by default), into a
    folder that exists: a mistyped path is an error, not a new folder."""
    from assistant.fsutil import atomic_write_text

    target = Path(name or "conversation.md").expanduser()
    if not session.turns:
        click.echo("Nothing to export yet: ask a question first.", err=True)
    elif target.is_dir():
        click.echo(
            f"{target} is a folder; give a file name, e.g. /export {target}/chat.md", err=True
        )
    elif target.exists() and target.resolve() not in _EXPORTED:  # nor /export /etc/passwd
        click.echo(f"{target} already exists; give a new file name, or remove it first.", err=True)
    elif not target.parent.is_dir():
        click.echo(
            f"Cannot write {target}: there is no folder {target.parent}. "
            "Create it first, or give another path.",
            err=True,
        )
    else:
        try:
            atomic_write_text(target, session.export_markdown())
            target.chmod(0o644)  # a document to share, not the temp file's 0600
            _EXPORTED.add(target.resolve())  # this chat may write it again as it grows
            n = len(session.turns)
            click.echo(f"Saved {n} turn{'s' if n != 1 else ''} to {target}.", err=err)
        except OSError as exc:
            click.echo(f"Cannot write {target}: {exc.strerror}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print each answer as one JSON line.")
@scope_options
@click.pass_context
def chat(ctx: click.Context, as_json: bool, docs: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    """Talk with the assistant in the terminal; follow-up questions use the conversation.
    --doc and --kind keep every answer of the conversation to the chosen documents.

    \b
    Commands inside the chat:
      /new            start a new conversation
      /export FILE    save the conversation as Markdown (with references and quotes)
      /sources        list the documents
      /quit           leave (or press Ctrl-D)
    """
    from assistant.chat import ChatSession
    from assistant.cli.terminal import answer_text, sources_text

    assistant = ready(ctx)
    session = ChatSession(assistant, scope=chosen_scope(assistant, docs, kinds))
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("Ask about the article and its sources. /help for commands, Ctrl-D to leave.")
        if session.scope:
            chosen = [*sorted(session.scope.docs), *sorted(session.scope.kinds)]
            click.echo(f"Answering from: {', '.join(chosen)}.")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, arg = line.partition(" ")
            if cmd in ("/quit", "/exit", "/q"):
                break
            # With --json, stdout carries the answers' JSON lines only; the rest goes to stderr.
            if cmd == "/new":
                session.reset()  # the conversation's scope stays
                click.echo("New conversation.", err=as_json)
            elif cmd == "/export":
                export(session, arg.strip(), err=as_json)
            elif cmd == "/sources":
                click.echo(sources_text(assistant.sources()), err=as_json)
            else:
                click.echo("Commands: /new, /export FILE, /sources, /quit", err=as_json)
            continue
        try:
            answer = session.ask(line)
        except InputError as exc:
            click.echo(f"{exc.message} {exc.hint or ''}".strip(), err=True)
            continue
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            click.echo(answer_text(answer))
            click.echo("")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents (the article and its sources) with their metadata."""
    from assistant.cli.terminal import sources_text

    items = ready(ctx).sources()
    if as_json:
        emit_json([s.to_dict() for s in items])
    else:
        click.echo(sources_text(items))


@click.command()
@click.argument("passage_id")
@click.option(
    "--context",
    "chars",
    type=click.IntRange(0, 20000),
    default=400,
    show_default=True,
    help="Characters of surrounding text on each side.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the passage and its context as JSON.")
@click.pass_context
def show(ctx: click.Context, passage_id: str, chars: int, as_json: bool) -> None:
    """Look up a citation: the passage, its document, offsets, and the text around it.

    \b
    Example:
      assistant show sino-russian-relations:8eb0cabf2f --context 800
    """
    from assistant.cli.terminal import context_text

    ctx_ = ready(ctx).context(passage_id, chars)
    if as_json:
        emit_json(context_view(ctx_))
    else:
        click.echo(context_text(ctx_))


@click.command()
@click.argument("claim")
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Passages to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the passages and scores as JSON.")
@click.pass_context
def cite(ctx: click.Context, claim: str, top_k: int, as_json: bool) -> None:
    """Find the passages that support CLAIM, best first, with support scores (0..1).

    \b
    Example:
      assistant cite "Trade between Russia and China passed $240 billion in 2023"
    """
    from assistant.cli.terminal import support_text

    assistant = get_assistant(ctx)
    assistant.clean(claim, "claim")
    results = ready(ctx).cite(claim, k=top_k)
    titles = {s.document.id: s.document.meta.title for s in assistant.sources()}
    if as_json:
        emit_json(support_view(claim, results, titles))
    else:
        click.echo(support_text(results, titles))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--title", help="Title of the document (one file only).")
@click.option("--url", help="Where the document can be read.")
@click.option("--author", help="Author or publisher.")
@click.option("--date", help="Publication date, for example 2024-05-01.")
@click.option(
    "--kind", type=click.Choice(["source", "article"]), default="source", show_default=True
)
@click.option("--no-index", is_flag=True, help="Copy and record only; index later.")
@click.pass_context
def add(
    ctx: click.Context,
    paths: tuple[Path, ...],
    title: str | None,
    url: str | None,
    author: str | None,
    date: str | None,
    kind: str,
    no_index: bool,
) -> None:
    """Copy files (or folders of them) into the corpus, record them, and index them.

    \b
    Supported: Markdown, plain text, HTML and PDF. A file named here that cannot be added
    is an error (exit code 2, after adding the others); files of other types inside a folder
    are skipped with a warning.
    Examples:
      assistant add notes.md
      assistant add report.pdf --title "Trade report 2024" --url https://example.org --date 2024-03-01
      assistant add ./background/
    """
    from assistant.corpus import add_files

    assistant = get_assistant(ctx)
    result = add_files(
        Path(assistant.settings.corpus_dir),
        list(paths),
        title=title,
        url=url,
        author=author,
        date=date,
        kind=kind,
    )
    for rel in result.added:
        click.echo(f"Added {rel}")
    for src, rel in result.already:
        click.echo(f"Already in the corpus: {src} (as {rel})")
    for src, reason in result.skipped:
        click.echo(f"Warning: skipped {src}: {reason}", err=True)
    # Files already in the corpus but not yet indexed (an earlier add whose indexing failed or
    # was interrupted) are indexed too: "try again" must get them in.
    if not no_index and (result.added or not assistant.store.is_up_to_date()):
        print_index_report(assistant.index(progress=progress_bar))
    named = {str(p) for p in paths}
    refused = [src for src, _ in result.skipped if src in named]
    if refused:  # a file in a folder may be skipped; one named on the command line is an error
        click.echo(
            f"Not added: {', '.join(refused)} (see above); the other files were added.", err=True
        )
        ctx.exit(2)
