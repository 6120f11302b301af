"""What the `assistant` commands share: error display, progress bars, JSON output and the
assistant itself, with its index built on first use."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from assistant.config import load_settings
from assistant.errors import AssistantError


class ErrorsAsMessages(click.Group):
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


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def progress_bar(total: int, desc: str) -> Any:
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


def get_assistant(ctx: click.Context) -> Any:
    from assistant.api import Assistant

    obj = ctx.ensure_object(dict)
    if "assistant" not in obj:
        obj["assistant"] = Assistant(load_settings(**obj.get("overrides", {})))
    return obj["assistant"]


def print_index_report(report: Any, err: bool = False) -> None:
    from assistant.render import index_report_text, skipped_text

    for line in skipped_text(report):
        click.secho(line, err=True, fg="yellow")
    click.echo(index_report_text(report), err=err)


def ready(ctx: click.Context) -> Any:
    """The assistant with an index: built first when missing, with a note when stale."""
    assistant = get_assistant(ctx)
    if not assistant.store.exists():
        click.echo(f"No index yet at {assistant.settings.index_dir}; building it now.", err=True)
    report = assistant.ensure_index(progress=progress_bar)
    if report is not None:
        if report.repaired:
            click.echo(
                "The index was left unreadable by an interrupted write; rebuilt it from the corpus.",
                err=True,
            )
        print_index_report(report, err=True)
    elif assistant.store.state() and not assistant.store.is_up_to_date():
        click.echo(
            "Note: the corpus changed since the last index run; run `assistant index` to "
            "include the changes.",
            err=True,
        )
    return assistant


def quietly(run: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        run()
