"""`assistant mcp`: the assistant's tools (ask, cite, show, sources) for Model Context Protocol
clients, over stdin and stdout, from the same index and settings as the other commands.
Registered with the `assistant` command through the `assistant.commands` entry-point group
(pyproject.toml)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import click
from pydantic import Field, ValidationError

from assistant import (
    Answer,
    Assistant,
    AssistantError,
    ChatSession,
    Query,
    Scope,
    Turn,
    context_view,
    support_view,
)
from assistant.cli.context import quietly, ready
from ui.mcp_schema import (
    AskResult,
    CiteResult,
    EarlierTurn,
    Message,
    ShowResult,
    SourceOut,
    SourcesResult,
)

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

MAX_HISTORY = 50  # earlier turns; a follow-up leans on the last few
MAX_PASSAGE_ID = 200

INSTRUCTIONS = (
    "Answers questions about an article on Sino-Russian relations and its supporting sources. "
    "Every sentence of an answer ends with [n] markers that cite the exact characters of a "
    "document; `show` looks a cited passage up in context, `cite` finds the passages that "
    "support a claim, `sources` lists the documents. Pass earlier turns as `history` so that "
    'follow-ups ("When was it signed?") are understood.'
)

Question = Annotated[
    str, Field(description="The question, in plain words; at most 2,000 characters by default.")
]
History = Annotated[
    list[EarlierTurn | Message] | None,
    Field(
        max_length=MAX_HISTORY,
        description="Earlier turns of the conversation, oldest first, as {question, answer} "
        "pairs (an earlier `ask` result can be passed back unchanged) or as {role, content} "
        "chat messages. A follow-up question is then searched for with what it refers to.",
    ),
]
Strict = Annotated[
    bool,
    Field(
        strict=True,  # "yes" is not true: a wrong type is an error, as for the others
        description="With a language model configured: drop sentences the sources do not "
        "support (by default they are marked). No effect on extractive answers.",
    ),
]
ScopeArg = Annotated[
    dict[str, list[str]] | None,
    Field(
        description='Answer only from these documents: {"docs": [document ids], "kinds": '
        '["article" or "source"]} (the `sources` tool lists the ids). Follow-ups keep it.'
    ),
]
Claim = Annotated[str, Field(description="A statement to find support for.")]
TopK = Annotated[int, Field(strict=True, ge=1, le=50, description="Passages to return.")]
PassageId = Annotated[
    str,
    Field(
        max_length=MAX_PASSAGE_ID,
        description="A passage id from a citation, e.g. sino-russian-relations:8eb0cabf2f.",
    ),
]
ContextChars = Annotated[
    int,
    Field(strict=True, ge=0, le=20000, description="Characters of surrounding text on each side."),
]


@contextlib.contextmanager
def as_tool_errors(where: str = "") -> Iterator[None]:
    """The library's errors (bad input, a missing or damaged index) as tool errors, with
    the message and what to do next; the client's model reads them."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except AssistantError as exc:
        raise ToolError(f"{where}{exc.message} {exc.hint or ''}".strip()) from None


def conversation(history: list[EarlierTurn | Message]) -> list[EarlierTurn]:
    """Chat messages paired into turns: an assistant message answers the user message before
    it; one with no question before it is ignored."""
    turns: list[EarlierTurn] = []
    answered = True
    for item in history:
        if isinstance(item, EarlierTurn):
            turns.append(item)
            answered = True
        elif item.role == "user":
            turns.append(EarlierTurn(question=item.content))
            answered = False
        elif not answered:
            turns[-1] = EarlierTurn(question=turns[-1].question, answer=item.content)
            answered = True
    return turns


def resume(assistant: Assistant, history: list[EarlierTurn | Message]) -> ChatSession:
    """A chat session holding the earlier turns as `assistant chat` would have recorded them:
    each question as it was searched for (follow-ups rewritten), with the answer given."""
    session = ChatSession(assistant)
    for i, turn in enumerate(conversation(history), start=1):
        with as_tool_errors(f"history turn {i}: "):
            text = assistant.clean(turn.question)
            rewritten = session.standalone(text)
            standalone = Query(assistant.clean(rewritten.text), rewritten.borrowed).standalone
        answer = Answer.from_dict(
            {
                "question": text,
                "answer": turn.answer,
                "abstained": False,
                "citations": [c.model_dump() for c in turn.citations],
            }
        )
        answer.standalone_question = standalone
        session.turns.append(Turn(text, standalone, answer))
    return session


def build_server(assistant: Assistant) -> MCPServer:
    """The MCP server with the four tools, answering from `assistant`."""
    from importlib.metadata import version

    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    class Server(MCPServer):
        """Arguments that do not fit a tool's input schema are named in one short line."""

        async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
            # An argument the tool does not take is refused, not dropped: a misspelt
            # "scpoe" must not answer from every document.
            tools = {t.name: t for t in await self.list_tools()}
            if name in tools and isinstance(arguments, dict):
                takes = sorted(tools[name].input_schema.get("properties", {}))
                unknown = sorted(set(arguments) - set(takes))
                if unknown:
                    raise ToolError(
                        f"Error executing tool {name}: unknown argument {unknown[0]!r}; it "
                        f"takes {', '.join(takes) or 'no arguments'}."
                    )
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:
                if type(exc) is ToolError and isinstance(exc.__cause__, ValidationError):
                    problems = "; ".join(
                        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: "
                        f"{error['msg']}"
                        for error in exc.__cause__.errors(include_url=False)
                    )
                    raise ToolError(
                        f"Error executing tool {name}: {problems}. The tool's input schema "
                        "lists its arguments."
                    ) from exc.__cause__
                raise

    server: MCPServer = Server(
        name="assistant",
        title="Sino-Russian relations assistant",
        version=version("assistant"),
        instructions=INSTRUCTIONS,
        log_level="WARNING",  # stderr; tool errors reach the client, not the log
    )
    reads = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
    closed = ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    )

    def ask(
        question: Question, history: History = None, strict: Strict = False, scope: ScopeArg = None
    ) -> AskResult:
        """Answer a question from the article and its sources. Returns the answer text, whose
        every sentence ends with [n] markers; the citations those markers refer to (passage
        id, document title, kind, URL, exact character offsets and the quoted text); the short
        answer (a figure, date or name) when there is one; per-sentence support scores; and
        the passages retrieved. `abstained` is true when the sources do not answer it."""
        session = resume(assistant, history or [])
        with as_tool_errors():
            session.scope = Scope.from_dict(scope)
            answer = session.ask(question, strict=strict)
        return AskResult.model_validate(answer.to_dict())

    def cite(claim: Claim, top_k: TopK = 5) -> CiteResult:
        """Find the passages that support a claim, best supported first. Returns each
        passage's id, document and text, its support score (0..1, `supports` when at least
        0.5) and the sentence that matches the claim best, with its offsets."""
        with as_tool_errors():
            results = assistant.cite(claim, k=top_k)
            titles = {s.document.id: s.document.meta.title for s in assistant.sources()}
        return CiteResult.model_validate(support_view(claim, results, titles))

    def show(passage_id: PassageId, context: ContextChars = 400) -> ShowResult:
        """Look up a cited passage by its id. Returns the passage text with its document
        offsets and sentences, the document's metadata (title, kind, author, date, URL), and
        the text just before and after it."""
        with as_tool_errors():
            found = assistant.context(passage_id, context)
        return ShowResult.model_validate(context_view(found))

    def sources() -> SourcesResult:
        """List the documents. Returns the indexed documents, the article first, each with
        its id, title, kind (article or source), author, publisher, date, URL, licence,
        references, how recent its facts are (current_to), and its numbers of passages and
        characters."""
        with as_tool_errors():
            found = assistant.sources()
        return SourcesResult(sources=[SourceOut.model_validate(s.to_dict()) for s in found])

    for tool, title, hints in (
        (ask, "Ask a question", closed),
        (cite, "Find support for a claim", closed),
        (show, "Show a passage in context", reads),
        (sources, "List the documents", reads),
    ):
        # The docstring as one paragraph: clients show it, or hand it to their model, as is.
        about = " ".join((tool.__doc__ or "").split())
        server.add_tool(tool, title=title, description=about, annotations=hints)
    return server


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Whatever is written to stdout, by Python or below it, goes to stderr instead: on
    stdout an MCP client expects protocol messages only."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@click.command("mcp")
@click.pass_context
def mcp_command(ctx: click.Context) -> None:
    """Serve the assistant to MCP clients over stdin and stdout: tools ask, cite, show, sources.

    \b
    Stdout carries protocol messages only; progress, notes and errors go to stderr. The index
    is built first when there is none. Client configuration: README.md, "MCP server".
    Examples:
      assistant mcp
      assistant --index /path/to/index mcp
    """
    with stdout_to_stderr():
        assistant = ready(ctx)
        server = build_server(assistant)
    click.echo("Serving MCP on stdin/stdout (tools: ask, cite, show, sources).", err=True)
    # The first question should not wait for the encoder to load; a failure here shows
    # again, with its message, when a tool is called.
    threading.Thread(target=quietly, args=(assistant.warm_up,), daemon=True).start()
    server.run("stdio")
