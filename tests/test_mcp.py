"""`assistant mcp`: the server run as a separate process and driven by the `mcp` package's own
client over stdio, against real indexes; its results must equal what the command line's
`--json` output says for the same input."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from click.testing import CliRunner
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from assistant.cli import cli
from tests.conftest import CORPUS
from tests.helpers import cli_command

ROOT = Path(__file__).resolve().parent.parent
TRADE = "How large was bilateral trade between Russia and China in 2023?"
PIPELINE = "What is the Power of Siberia 2 project?"
FOLLOWUP = "When was it signed?"
# A guard against a server that hangs, so that it cannot hang the suite; not a speed bound.
HANG_GUARD_S = 900

Session = Callable[[ClientSession], Awaitable[None]]


def server_params(corpus: Path, index: Path) -> StdioServerParameters:
    command = cli_command(corpus, index, "mcp")
    return StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT))


def drive(params: StdioServerParameters, body: Session) -> None:
    """Start the server, initialise a client session, run `body` with it, stop the server."""

    async def main() -> None:
        with anyio.fail_after(HANG_GUARD_S):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await body(s)

    try:
        anyio.run(main)
    except BaseExceptionGroup as group:
        # The client's task groups wrap a failed assertion: report it as itself.
        failure: BaseException = group
        while isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
            failure = failure.exceptions[0]
        raise failure from None


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    # The text block carries the same data, for clients that read only text.
    assert json.loads(text_of(result)) == result.structured_content
    return result.structured_content


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def cli_json(index: Path, *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(
        cli, ["--corpus", str(CORPUS), "--index", str(index), *args], input=input
    )
    assert result.exit_code == 0, result.output
    if input is not None:  # chat --json: one answer per line
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return json.loads(result.stdout)


def untimed(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "timings_ms"}


def test_the_tools_return_what_the_command_line_prints(default_index: Path) -> None:
    async def body(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == {"ask", "cite", "show", "sources"}
        for tool in tools.values():
            assert tool.description and "Returns" in tool.description
            assert tool.output_schema and tool.output_schema["type"] == "object"
        assert tools["ask"].input_schema["required"] == ["question"]
        assert {"question", "history", "scope"} <= set(tools["ask"].input_schema["properties"])
        assert tools["cite"].input_schema["properties"]["top_k"]["type"] == "integer"
        assert tools["show"].input_schema["required"] == ["passage_id"]

        answer = await call(s, "ask", {"question": TRADE})
        expected = cli_json(default_index, "ask", TRADE, "--json")
        assert untimed(answer) == untimed(expected)
        assert "[1]" in answer["answer"] and answer["short_answer"]["text"] == "$240 billion"

        cited = await call(s, "cite", {"claim": "China supplies microchips to Russia", "top_k": 3})
        assert cited == cli_json(
            default_index, "cite", "China supplies microchips to Russia", "-k", "3", "--json"
        )
        assert len(cited["passages"]) == 3

        pid = answer["citations"][0]["passage_id"]
        shown = await call(s, "show", {"passage_id": pid, "context": 120})
        assert shown == cli_json(default_index, "show", pid, "--context", "120", "--json")
        assert shown["id"] == pid and len(shown["before"]) == 120

        scoped = await call(
            s, "ask", {"question": TRADE, "scope": {"docs": ["russia-china-trade"]}}
        )
        expected = cli_json(default_index, "ask", TRADE, "--doc", "russia-china-trade", "--json")
        assert untimed(scoped) == untimed(expected)
        assert {c["doc_id"] for c in scoped["citations"]} == {"russia-china-trade"}

        listed = await call(s, "sources", {})
        assert listed["sources"] == cli_json(default_index, "sources", "--json")
        assert listed["sources"][0]["kind"] == "article"

    drive(server_params(CORPUS, default_index), body)


def test_a_followup_with_history_is_answered_as_the_chat_answers_it(default_index: Path) -> None:
    chat = cli_json(default_index, "chat", "--json", input=f"{PIPELINE}\n{FOLLOWUP}\n")
    assert chat[1]["standalone_question"] != FOLLOWUP  # the chat resolved it

    async def body(s: ClientSession) -> None:
        first = await call(s, "ask", {"question": PIPELINE})
        assert untimed(first) == untimed(chat[0])
        # An earlier result passed back as it came: the same turn the chat recorded.
        followup = await call(s, "ask", {"question": FOLLOWUP, "history": [first]})
        assert untimed(followup) == untimed(chat[1])
        # A {question, answer} pair, or chat messages, resolve the follow-up the same way.
        pair = {"question": PIPELINE, "answer": first["answer"]}
        messages = [
            {"role": "user", "content": PIPELINE},
            {"role": "assistant", "content": first["answer"]},
        ]
        for history in ([pair], messages):
            answer = await call(s, "ask", {"question": FOLLOWUP, "history": history})
            assert answer["standalone_question"] == chat[1]["standalone_question"]
        # Without history the same words stand alone.
        alone = await call(s, "ask", {"question": FOLLOWUP})
        assert "standalone_question" not in alone

    drive(server_params(CORPUS, default_index), body)


def test_bad_arguments_come_back_as_tool_errors(default_index: Path) -> None:
    async def refused(s: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
        result = await s.call_tool(tool, arguments)
        assert result.is_error, result.structured_content
        return text_of(result)

    async def body(s: ClientSession) -> None:
        assert "The question is empty" in await refused(s, "ask", {"question": "  "})
        assert "limit is 2,000" in await refused(s, "ask", {"question": "why " * 600})
        assert "limit is 2,000" in await refused(s, "cite", {"claim": "x" * 2001})
        wrong_type = await refused(s, "ask", {"question": 42})
        assert wrong_type == (
            "Error executing tool ask: question: Input should be a valid string. "
            "The tool's input schema lists its arguments."
        )
        assert "claim: Field required" in await refused(s, "cite", {})
        assert "top_k: Input should be greater than or equal to 1" in await refused(
            s, "cite", {"claim": "trade", "top_k": 0}
        )
        assert "valid integer" in await refused(s, "show", {"passage_id": "x", "context": "wide"})
        # Types are not guessed: "3" is no integer, "yes" no boolean.
        assert "top_k: Input should be a valid integer" in await refused(
            s, "cite", {"claim": "trade", "top_k": "3"}
        )
        assert "strict: Input should be a valid boolean" in await refused(
            s, "ask", {"question": TRADE, "strict": "yes"}
        )
        unknown = await refused(s, "show", {"passage_id": "sino-russian-relations:nope"})
        assert "No passage with id 'sino-russian-relations:nope'" in unknown
        assert "at most 200 characters" in await refused(s, "show", {"passage_id": "x" * 201})
        bad_turn = await refused(
            s, "ask", {"question": FOLLOWUP, "history": [{"question": TRADE}, {"question": ""}]}
        )
        assert "history turn 2: The question is empty" in bad_turn
        assert "history" in await refused(s, "ask", {"question": TRADE, "history": "yesterday"})
        many = [{"question": TRADE}] * 51
        assert "at most 50 items" in await refused(s, "ask", {"question": TRADE, "history": many})
        assert "Unknown tool" in await refused(s, "delete", {})
        # An argument a tool does not take is refused, not dropped.
        assert await refused(s, "ask", {"question": TRADE, "scpoe": {"docs": ["brics"]}}) == (
            "Error executing tool ask: unknown argument 'scpoe'; it takes history, question, "
            "scope, strict."
        )
        assert "unknown argument 'bogus'" in await refused(s, "sources", {"bogus": 1})
        assert "unknown key 'doc'" in await refused(
            s, "ask", {"question": TRADE, "scope": {"doc": ["brics"]}}
        )
        assert "No document with id 'nope'" in await refused(
            s, "ask", {"question": TRADE, "scope": {"docs": ["nope"]}}
        )
        # The server is still up and answering.
        assert (await call(s, "sources", {}))["sources"]

    drive(server_params(CORPUS, default_index), body)


def readme_config() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    found = [json.loads(b) for b in blocks if '"mcpServers"' in b]
    assert len(found) == 1, "README.md should show one mcpServers configuration"
    servers = found[0]["mcpServers"]
    assert len(servers) == 1
    return next(iter(servers.values()))


def test_the_readme_configuration_starts_a_working_server(default_index: Path) -> None:
    config = readme_config()
    assert set(config["env"]) == {"ASSISTANT_INDEX_DIR"}
    # The README puts the virtualenv's bin folder on PATH; only the index path is replaced.
    env = {**config["env"], "ASSISTANT_INDEX_DIR": str(default_index)}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    params = StdioServerParameters(command=config["command"], args=config["args"], env=env)

    async def body(s: ClientSession) -> None:
        answer = await call(s, "ask", {"question": TRADE})
        assert answer["short_answer"]["text"] == "$240 billion"
        assert untimed(answer) == untimed(cli_json(default_index, "ask", TRADE, "--json"))

    drive(params, body)


@asynccontextmanager
async def raw_server(command: list[str], env: dict[str, str]) -> AsyncIterator[Any]:
    async with await anyio.open_process(command, env=env, cwd=str(ROOT)) as process:
        yield process


def test_a_missing_index_is_built_and_stdout_carries_only_protocol_messages(
    small_corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    env = {**os.environ, "ASSISTANT_PROGRESS": "1"}  # progress bars even without a terminal
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sources"}},
    ]

    async def main() -> tuple[list[str], str]:
        lines: list[str] = []
        stderr: list[bytes] = []

        async def drain(stream: Any) -> None:  # so that a full stderr pipe cannot block it
            stderr.extend([chunk async for chunk in stream])

        with anyio.fail_after(HANG_GUARD_S):
            async with (
                raw_server(cli_command(small_corpus, index, "mcp"), env) as process,
                anyio.create_task_group() as tasks,
            ):
                tasks.start_soon(drain, process.stderr)
                stdout = BufferedByteReceiveStream(process.stdout)
                for request in requests:
                    await process.stdin.send((json.dumps(request) + "\n").encode())
                while not any('"id":2' in line.replace(" ", "") for line in lines):
                    lines.append((await stdout.receive_until(b"\n", 10**7)).decode())
                await process.stdin.aclose()
                async for chunk in stdout:
                    lines += chunk.decode().splitlines()
                await process.wait()
        return lines, b"".join(stderr).decode()

    lines, stderr = anyio.run(main)
    messages = [json.loads(line) for line in lines if line.strip()]
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    result = next(m for m in messages if m.get("id") == 2)["result"]
    assert [s["id"] for s in result["structuredContent"]["sources"]]
    assert f"No index yet at {index}; building it now." in stderr
    assert "Index:" in stderr and "Serving MCP" in stderr
    assert (index / "CURRENT").exists()
