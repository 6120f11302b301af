"""The `assistant` command: global options, the core commands, and the commands the apps
register (the web app's `serve`, the evaluation's `eval` and `bench`)."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path
from typing import Any

import click

from assistant import __version__
from assistant.cli import commands
from assistant.cli.context import CommandGroup, show_warning

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    # Nested, so that options and ASSISTANT_LLM__* / ASSISTANT_LLM_* variables combine.
    model = {"backend": llm, "url": llm_url, "model": llm_model, "path": llm_path}
    if any(model.values()):
        overrides["llm"] = {key: value for key, value in model.items() if value}
    ctx.ensure_object(dict)["overrides"] = overrides
    warnings.showwarning = show_warning


for command in (
    commands.index,
    commands.ask,
    commands.chat,
    commands.sources,
    commands.show,
    commands.cite,
    commands.add,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="assistant")
    finally:
        # The command is done (or stopped). A Ctrl-C while Python waits for the worker threads
        # to end then ends the process as a Ctrl-C does (status 130), not with a traceback
        # from the threading module and status 0.
        signal.signal(signal.SIGINT, signal.SIG_DFL)


if __name__ == "__main__":
    main()
