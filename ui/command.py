"""`assistant serve`: the web app's command, registered with the `assistant` command through
the `assistant.commands` entry-point group (pyproject.toml)."""

from __future__ import annotations

import threading

import click

from assistant import InputError
from assistant.cli.context import get_assistant, quietly, ready


@click.command()
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
    Set ASSISTANT_AUTH=user:password to require a login. The same server answers
    OpenAI's chat-completions API under /v1; set ASSISTANT_API_KEY to require a bearer key.
    Examples:
      assistant serve
      assistant serve --port 8080
      ASSISTANT_AUTH=alice:secret assistant serve --host 0.0.0.0
    """
    from ui.app import launch, parse_auth

    auth = parse_auth(get_assistant(ctx).settings.auth)  # before any indexing
    assistant = ready(ctx)
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
    click.echo(f"OpenAI-compatible API at {url.rstrip('/')}/v1")
    # The first question should not wait for the encoder to load; a failure here shows
    # again, with its message, when a question is asked.
    threading.Thread(target=quietly, args=(assistant.warm_up,), daemon=True).start()
    try:
        app.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
