"""The `assistant` command: parse, call the library, render."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from assistant import __version__
from assistant.config import Settings
from assistant.errors import AssistantError, InputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _Group(click.Group):
    """Shows library errors as messages with a hint, never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as exc:
            click.secho(f"Error: {exc.message}", err=True, fg="red")
            if exc.hint:
                click.echo(exc.hint, err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="text",
        file=sys.stderr,
        disable=not (sys.stderr.isatty() or os.environ.get("ASSISTANT_PROGRESS") == "1"),
        leave=False,
        dynamic_ncols=True,
    )


def _assistant(ctx: click.Context) -> Any:
    from assistant.api import Assistant

    obj = ctx.ensure_object(dict)
    if "assistant" not in obj:
        obj["assistant"] = Assistant(Settings(**obj.get("overrides", {})))
    return obj["assistant"]


def _report(report: Any, err: bool = False) -> None:
    from assistant.render import index_report_text, skipped_text

    for line in skipped_text(report):
        click.secho(line, err=True, fg="yellow")
    click.echo(index_report_text(report), err=err)


def _ready(ctx: click.Context) -> Any:
    """The assistant with an index: built first when missing, with a note when stale."""
    assistant = _assistant(ctx)
    if not assistant.store.exists():
        click.echo(f"No index yet at {assistant.settings.index_dir}; building it now.", err=True)
    report = assistant.ensure_index(progress=_progress)
    if report is not None:
        if report.repaired:
            click.echo(
                "The index was left unreadable by an interrupted write; rebuilt it from the corpus.",
                err=True,
            )
        _report(report, err=True)
    elif assistant.store.state() and not assistant.store.is_up_to_date():
        click.echo(
            "Note: the corpus changed since the last index run; run `assistant index` to "
            "include the changes.",
            err=True,
        )
    return assistant


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assistant")
@click.option(
    "--corpus", type=click.Path(path_type=Path), help="Corpus folder [env ASSISTANT_CORPUS_DIR]."
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    help="Index folder [env ASSISTANT_INDEX_DIR].",
)
@click.option("--embed-model", help="Embedding model folder or name [env ASSISTANT_EMBED_MODEL].")
@click.option("--chroma-url", help="Chroma server, http://host:port [env ASSISTANT_CHROMA_URL].")
@click.option(
    "--llm",
    type=click.Choice(["none", "openai-compatible", "llama-cpp"]),
    help="Answer with a language model [env ASSISTANT_LLM].",
)
@click.option(
    "--llm-url",
    help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 [env ASSISTANT_LLM_URL].",
)
@click.option("--llm-model", help="Model name on that server [env ASSISTANT_LLM_MODEL].")
@click.option("--llm-path", help="GGUF file for --llm llama-cpp [env ASSISTANT_LLM_PATH].")
@click.pass_context
def cli(
    ctx: click.Context,
    corpus: Path | None,
    index_dir: Path | None,
    embed_model: str | None,
    chroma_url: str | None,
    llm: str | None,
    llm_url: str | None,
    llm_model: str | None,
    llm_path: str | None,
) -> None:
    """Ask questions about an article and its sources; every sentence of an answer is cited.

    \b
    Examples:
      assistant ask "How large was bilateral trade between Russia and China in 2023?"
      assistant ask "What is the Power of Siberia 2 project?" --json
      assistant show sino-russian-relations:8eb0cabf2f
      assistant cite "China supplies microchips to Russia"
      assistant chat
      assistant add report.pdf --title "Annual report" --url https://example.org/report
      assistant index --rebuild
      assistant sources
      ASSISTANT_LLM=openai-compatible ASSISTANT_LLM_URL=http://127.0.0.1:8080/v1 assistant ask "..."
    """
    overrides: dict[str, Any] = {}
    if corpus is not None:
        overrides["corpus_dir"] = corpus
    if index_dir is not None:
        overrides["index_dir"] = index_dir
    if embed_model:
        overrides["embed_model"] = embed_model
    if chroma_url:
        overrides["chroma_url"] = chroma_url
    for key, value in (
        ("llm", llm),
        ("llm_url", llm_url),
        ("llm_model", llm_model),
        ("llm_path", llm_path),
    ):
        if value:
            overrides[key] = value
    ctx.ensure_object(dict)["overrides"] = overrides


@cli.command()
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
    report = _assistant(ctx).index(rebuild=rebuild, progress=_progress)
    if as_json:
        _emit_json(
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
        _report(report)


@cli.command()
@click.argument("question")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the answer, citations and passages as JSON."
)
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(1, 50),
    default=None,
    help="Passages to retrieve (default 5).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="With a model: drop sentences the sources do not support (default: mark them).",
)
@click.pass_context
def ask(ctx: click.Context, question: str, as_json: bool, top_k: int | None, strict: bool) -> None:
    """Answer QUESTION from the corpus, citing the source of every sentence.

    \b
    With a language model configured (--llm), the answer streams as it is written and is then
    checked sentence by sentence against the passages it cites.
    Examples:
      assistant ask "Which treaties ceded territory to the Russian Empire?"
      assistant ask "What share of Russia's imports comes from China?" --json -k 8
      assistant --llm llama-cpp --llm-path model.gguf ask "What is the Middle Corridor?" --strict
    """
    from assistant.render import answer_text
    from assistant.types import Answer

    assistant = _assistant(ctx)
    assistant.clean(question)  # reject bad input before any index work
    ready = _ready(ctx)
    answer: Answer | None = None
    streamed = False
    for event in ready.ask_stream(question, k=top_k, strict=strict):
        if isinstance(event, Answer):
            answer = event
        elif not as_json and sys.stdout.isatty():
            click.echo(event, nl=False)
            streamed = True
    assert answer is not None
    if as_json:
        _emit_json(answer.to_dict())
        return
    if streamed:
        click.echo("\n\nChecked against the sources:")
    click.echo(answer_text(answer))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print each answer as one JSON line.")
@click.pass_context
def chat(ctx: click.Context, as_json: bool) -> None:
    """Talk with the assistant in the terminal; follow-up questions use the conversation.

    \b
    Commands inside the chat:
      /new            start a new conversation
      /export FILE    save the conversation as Markdown (with references and quotes)
      /sources        list the documents
      /quit           leave (or press Ctrl-D)
    """
    from assistant.chat import ChatSession
    from assistant.render import answer_text, sources_text

    assistant = _ready(ctx)
    session = ChatSession(assistant)
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("Ask about the article and its sources. /help for commands, Ctrl-D to leave.")
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
            if cmd == "/new":
                session.reset()
                click.echo("New conversation.")
            elif cmd == "/export":
                target = Path(arg.strip() or "conversation.md")
                from assistant.fsutil import atomic_write_text

                try:
                    atomic_write_text(target, session.export_markdown())
                    click.echo(f"Saved {len(session.turns)} turns to {target}.")
                except OSError as exc:
                    click.echo(f"Cannot write {target}: {exc.strerror}", err=True)
            elif cmd == "/sources":
                click.echo(sources_text(assistant.sources()))
            else:
                click.echo("Commands: /new, /export FILE, /sources, /quit")
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents (the article and its sources) with their metadata."""
    from assistant.render import sources_text

    items = _ready(ctx).sources()
    if as_json:
        _emit_json([s.to_dict() for s in items])
    else:
        click.echo(sources_text(items))


@cli.command()
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
    from assistant.render import context_text

    ctx_ = _ready(ctx).context(passage_id, chars)
    if as_json:
        _emit_json(
            {
                **ctx_.passage.to_dict(),
                "document": ctx_.document.meta.to_dict(),
                "before": ctx_.before,
                "after": ctx_.after,
            }
        )
    else:
        click.echo(context_text(ctx_))


@cli.command()
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
    from assistant.render import support_text

    assistant = _assistant(ctx)
    assistant.clean(claim)
    results = _ready(ctx).cite(claim, k=top_k)
    titles = {s.document.id: s.document.meta.title for s in assistant.sources()}
    if as_json:
        out = []
        for r in results:
            out.append(
                {
                    "passage_id": r.passage.id,
                    "doc_id": r.passage.doc_id,
                    "title": titles.get(r.passage.doc_id, r.passage.doc_id),
                    "support": r.score,
                    "supports": r.score >= 0.5,
                    "sentence": list(r.sentence) if r.sentence else None,
                    "quote": r.quote,
                    "text": r.passage.text,
                }
            )
        _emit_json({"claim": claim, "passages": out})
    else:
        click.echo(support_text(results, titles))


@cli.command()
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
    Supported: Markdown, plain text, HTML and PDF.
    Examples:
      assistant add notes.md
      assistant add report.pdf --title "Trade report 2024" --url https://example.org --date 2024-03-01
      assistant add ./background/
    """
    from assistant.corpus import add_files

    assistant = _assistant(ctx)
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
    if result.added and not no_index:
        _report(assistant.index(progress=_progress))


def _quietly(run: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Answers computed at once [env ASSISTANT_WEB_WORKERS, default 4]; others wait, "
    "and beyond ASSISTANT_WEB_WAITING waiting questions the asker is told the app is busy.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, concurrency: int | None) -> None:
    """Start the web app: chat with cited answers, browse the sources, look up citations.

    \b
    Set ASSISTANT_AUTH=user:password to require a login.
    Examples:
      assistant serve
      assistant serve --port 8080
      ASSISTANT_AUTH=alice:secret assistant serve --host 0.0.0.0
    """
    assistant = _ready(ctx)
    from ui.app import launch, parse_auth

    auth = parse_auth(assistant.settings.auth)
    try:
        app, url = launch(
            assistant, host=host, port=port, auth=auth, concurrency=concurrency, block=False
        )
    except OSError as exc:
        raise InputError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}).",
            "Choose another port with --port, or stop the program using this one.",
        ) from None
    click.echo(
        f"Serving on {url.rstrip('/')}  (Ctrl-C to stop)" + ("  login required" if auth else "")
    )
    # The first question should not wait for the encoder to load; a failure here shows
    # again, with its message, when a question is asked.
    threading.Thread(target=_quietly, args=(assistant.warm_up,), daemon=True).start()
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()


@cli.command(name="eval")
@click.option(
    "--questions",
    "questions",
    multiple=True,
    type=click.Path(path_type=Path),
    help="JSONL question set (repeatable; default: evals/data/gold.jsonl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for run folders (default: evals/runs).",
)
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="A previous run folder (default: the latest one in --out).",
)
@click.option("--no-compare", is_flag=True, help="Do not compare with a previous run.")
@click.option(
    "--fail-under",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit 1 when METRIC is below VALUE (repeatable).",
)
@click.option(
    "--fail-over",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit 1 when METRIC is above VALUE, for lower-is-better metrics.",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also run LlamaIndex's default recipe on the same questions.",
)
@click.option(
    "--mode",
    type=click.Choice(["extractive", "llm"]),
    default="extractive",
    show_default=True,
    help="llm: answer with the configured model; the report shows extractive mode beside it.",
)
@click.pass_context
def eval_command(
    ctx: click.Context,
    questions: tuple[Path, ...],
    as_json: bool,
    out: Path | None,
    compare: Path | None,
    no_compare: bool,
    fail_under: tuple[str, ...],
    fail_over: tuple[str, ...],
    baseline: bool,
    mode: str,
) -> None:
    """Measure answer quality on a gold question set and write a report with plots.

    \b
    Writes a run folder: items.jsonl, summary.json, report.md and PNG plots.
    Exit code 1 when a --fail-under / --fail-over gate fails.
    Examples:
      assistant eval
      assistant eval --json --no-baseline
      assistant eval --fail-under hit_at_1=0.8 --fail-over over_refusal=0.05
      assistant eval --questions my-questions.jsonl --compare evals/runs/20261128-101500-extractive-abc123
    """
    from evals.run import parse_gates, run_eval

    gates = parse_gates(fail_under, fail_over)
    assistant = _ready(ctx)
    run = run_eval(
        assistant,
        question_files=list(questions),
        out_root=out or Path(assistant.settings.eval_dir),
        compare=None if no_compare else compare,
        compare_latest=not no_compare,
        gates=gates,
        baseline=baseline,
        mode=mode,
        progress=_progress,
    )
    summary = run.summary
    if as_json:
        _emit_json({**summary, "run_dir": str(run.folder)})
    else:
        from evals.report import summary_table

        click.echo(summary_table(summary))
        comp = summary.get("compare")
        if comp:
            click.echo(
                f"Against {comp['run']}: {len(comp['newly_failing'])} newly failing, {len(comp['newly_passing'])} newly passing."
            )
        click.echo(f"Report: {run.folder / 'report.md'}")
    failed = run.failed_gates
    for g in failed:
        click.secho(
            f"Gate failed: {g['metric']} = {g['value']} (required {g['op']} {g['threshold']})",
            err=True,
            fg="red",
        )
    if failed:
        ctx.exit(1)


@cli.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Benchmarks against LlamaIndex's default recipe, and a scaling run (python -m evals.bench).

    \b
    Examples:
      assistant bench --skip-scaling --reps 3
      assistant bench --sizes 1000,10000 --out bench-results
      assistant bench --help
    """
    from evals.bench import main as bench_main

    raise SystemExit(bench_main(list(args)))


def main() -> None:
    cli(prog_name="assistant")


if __name__ == "__main__":
    main()
