"""What the `assistant` commands share: the command group, error display, progress bars, JSON
output and the assistant itself, with its index built on first use. The apps' commands import
these too."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TextIO

import click

from assistant.config import load_settings
from assistant.errors import AssistantError, InputError

COMMANDS_GROUP = "assistant.commands"


class CommandGroup(click.Group):
    """The `assistant` group: shows library errors as messages with a hint, never as
    tracebacks, and adds the commands that the apps above the library register under the
    `assistant.commands` entry-point group (the web app's `serve`, the evaluation's `eval` and
    `bench`, see pyproject.toml). The library never imports its apps; they are loaded only
    when one of their commands is asked for or listed."""

    def _registered(self) -> dict[str, EntryPoint]:
        found: dict[str, EntryPoint] | None = getattr(self, "_apps", None)
        if found is None:
            found = {}
            for point in entry_points(group=COMMANDS_GROUP):
                if point.name not in self.commands:
                    found[point.name] = point
            self._apps = found
        return found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            point = self._registered().get(cmd_name)
            if point is not None:
                command = point.load()
                self.add_command(command, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._registered()})

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


_python_warning = warnings.showwarning


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """What the corpus warns about (a file read in another encoding, say), as the command's
    other warnings read: "Warning: documents/x.txt: …", not Python's source line."""
    from assistant.corpus import CorpusWarning

    if issubclass(category, CorpusWarning):
        click.secho(f"Warning: {message}", err=True, fg="yellow")
    else:
        _python_warning(message, category, filename, lineno, file, line)


def get_assistant(ctx: click.Context) -> Any:
    from assistant.service import Assistant

    obj = ctx.ensure_object(dict)
    if "assistant" not in obj:
        settings = load_settings(**obj.get("overrides", {}))
        for option, path in (("--index", settings.index_dir), ("--corpus", settings.corpus_dir)):
            if path.exists() and not path.is_dir():
                raise InputError(
                    f"{option} {path} is a file, not a folder.",
                    f"Give {option} a folder (the index folder is created when missing).",
                )
        obj["assistant"] = Assistant(settings)
    return obj["assistant"]


def print_index_report(report: Any, err: bool = False) -> None:
    from assistant.cli.terminal import index_report_text, skipped_text

    for line in skipped_text(report):
        click.secho(line, err=True, fg="yellow")
    click.echo(index_report_text(report), err=err)


def ready(ctx: click.Context) -> Any:
    """The assistant with an index: built first when missing, with a note when stale."""
    assistant = get_assistant(ctx)
    if not assistant.store.exists():
        click.echo(f"No index yet at {assistant.settings.index_dir}; building it now.", err=True)
    report = assistant.ensure_index(progress=progress_bar)
    state = assistant.store.state()
    if report is not None:
        if report.repaired:
            click.echo(
                "The index was left unreadable by an interrupted write; rebuilt it from the corpus.",
                err=True,
            )
        print_index_report(report, err=True)
    elif not assistant.settings.corpus_dir.is_dir():
        click.echo(
            f"Note: there is no corpus folder at {assistant.settings.corpus_dir}; answering from "
            "the index built earlier. Point --corpus (or ASSISTANT_CORPUS_DIR) at its folder.",
            err=True,
        )
    elif state and not assistant.store.is_up_to_date():
        click.echo(
            "Note: the corpus changed since the last index run; run `assistant index` to "
            "include the changes.",
            err=True,
        )
    if not int((state or {}).get("passages", 0)):
        click.echo(
            f"Note: the corpus at {assistant.settings.corpus_dir} holds no documents yet; add "
            "some with `assistant add FILE`.",
            err=True,
        )
    return assistant


def quietly(run: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):
        run()
