"""The OpenAI-compatible API (/v1), end to end: a real server on 127.0.0.1, driven with the
official `openai` SDK and with plain HTTP, its answers compared with `Assistant.ask` (what
`assistant ask --json` prints) and with the chat's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from assistant import Answer, Assistant, ChatSession, Citation, Settings
from assistant.embedding import Embedder
from evals.load_openai import run_load
from tests.helpers import stop
from tests.test_load_security import at_once, held_server, hold_until, status_of
from tests.test_web import TRADE, http, start_server
from ui.admission import BUSY, Admission
from ui.openai_api import OpenAIApi
from ui.openai_wire import reply_text

README = Path(__file__).resolve().parent.parent / "README.md"
AIGUN = "What was the Treaty of Aigun?"
FOLLOWUP = "When was it signed?"
KEY = "k3y-for-tests"
JSON = {"Content-Type": "application/json"}
ERROR_FIELDS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def local(web_corpus: tuple[Path, Path], embedder: Embedder) -> Assistant:
    """An assistant over the server's own corpus and index: what the answers must equal."""
    corpus, index = web_corpus
    return Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder)


@pytest.fixture(scope="module")
def server(
    web_corpus: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    corpus, index = web_corpus
    proc, url = start_server(corpus, index, tmp_path_factory.mktemp("v1") / "server.log")
    yield url
    stop(proc)


def sdk(url: str, key: str = "unused") -> openai.OpenAI:
    # No retries: a 429 or 5xx must show, not be retried away.
    return openai.OpenAI(base_url=url + "v1", api_key=key, max_retries=0, timeout=120)


def user(text: str) -> Any:
    return {"role": "user", "content": text}


def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, raw = http(url + "v1/chat/completions", "POST", data, {**JSON, **(headers or {})})
    return status, json.loads(raw)


def assert_error(status: int, body: Any, expected: int, kind: str = "invalid_request_error") -> str:
    """The body is an OpenAI error object of this status; its message."""
    assert status == expected, (status, body)
    assert set(body) == {"error"} and set(body["error"]) == ERROR_FIELDS, body
    assert body["error"]["type"] == kind and body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]
    return str(body["error"]["message"])


def split_reply(content: str, expected: dict[str, Any]) -> None:
    """The content is the answer's text, then each citation as a numbered source."""
    text, _, sources = content.partition("\n\nSources:\n")
    assert text == expected["answer"]
    for c in expected["citations"]:
        assert f"[{c['n']}] {c['title']} ({c['kind']})" in sources
        assert f'"{c["quote"]}"' in sources


def test_models_list_only_the_extractive_model_without_an_llm(server: str) -> None:
    assert [m.id for m in sdk(server).models.list()] == ["assistant-extractive"]
    assert sdk(server).models.retrieve("assistant-extractive").id == "assistant-extractive"
    with pytest.raises(openai.NotFoundError):
        sdk(server).models.retrieve("gpt-4o")


def test_an_answer_equals_ask_json(server: str, local: Assistant) -> None:
    expected = local.ask(TRADE).to_dict()
    reply = sdk(server).chat.completions.create(
        model="assistant-extractive",
        messages=[{"role": "system", "content": "Answer in French."}, user(TRADE)],
    )
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.role == "assistant"
    split_reply(reply.choices[0].message.content or "", expected)
    extra = reply.model_extra or {}
    assert extra["citations"] == expected["citations"] and expected["citations"]
    assert extra["short_answer"] == expected["short_answer"] and expected["short_answer"]
    assert "$240 billion" in extra["short_answer"]["text"]
    # Tokens as the embedding model's tokenizer counts them: what was read, what was written.
    count = local.embedder.count_tokens
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count([TRADE])[0] > 0  # the system message is not read
    assert reply.usage.completion_tokens == count([reply.choices[0].message.content or ""])[0]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_a_streamed_answer_equals_ask_json(server: str, local: Assistant) -> None:
    expected = local.ask(AIGUN).to_dict()
    stream = sdk(server).chat.completions.create(
        model="assistant-extractive", messages=[user(AIGUN)], stream=True
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks) and len(chunks) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    split_reply(content, expected)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"] == expected["citations"]
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])
    # On the wire: server-sent events, each `data: {...}`, ending with `data: [DONE]`.
    body = {"model": "assistant-extractive", "messages": [user(AIGUN)], "stream": True}
    status, raw = http(server + "v1/chat/completions", "POST", json.dumps(body).encode(), JSON)
    events = raw.decode().split("\n\n")
    assert status == 200 and events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])
    streamed = "".join(
        json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in events[:-2]
    )
    assert streamed == content
    # stream_options.include_usage: one more chunk, with no choices and the usage.
    counted = sdk(server).chat.completions.create(
        model="assistant-extractive",
        messages=[user(AIGUN)],
        stream=True,
        stream_options={"include_usage": True},
    )
    *answer, tail = list(counted)
    assert tail.choices == [] and tail.usage is not None and tail.usage.total_tokens > 0
    assert all(c.usage is None for c in answer) and answer[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("ours", [True, False], ids=["our-reply", "another-reply"])
def test_a_followup_is_resolved_from_the_messages(
    server: str, local: Assistant, ours: bool
) -> None:
    chat = ChatSession(local)
    chat.ask(AIGUN)
    expected = chat.ask(FOLLOWUP).to_dict()
    assert expected["standalone_question"] != FOLLOWUP  # the chat resolves it
    client = sdk(server)
    first = client.chat.completions.create(model="assistant-extractive", messages=[user(AIGUN)])
    # A reply this server wrote resumes its conversation; any other reply is answered again.
    earlier = first.choices[0].message.content if ours else "Something a client wrote."
    reply = client.chat.completions.create(
        model="assistant-extractive",
        messages=[user(AIGUN), {"role": "assistant", "content": earlier}, user(FOLLOWUP)],
    )
    split_reply(reply.choices[0].message.content or "", expected)
    assert (reply.model_extra or {})["citations"] == expected["citations"]
    alone = local.ask(FOLLOWUP).to_dict()
    assert alone["citations"] != expected["citations"]  # the history made the difference


LONG = "x" * 2001
BAD_REQUESTS: list[tuple[str, object, str]] = [
    ("no body", b"", "not JSON"),
    ("not json", b"{model:", "not JSON"),
    ("a list", [1, 2], "must be a JSON object, not a list"),
    ("no model", {"messages": [user(TRADE)]}, "Name a model"),
    ("no messages", {"model": "assistant-extractive"}, "messages must be a non-empty list"),
    ("empty messages", {"model": "assistant-extractive", "messages": []}, "non-empty list"),
    ("messages text", {"model": "assistant-extractive", "messages": "hi"}, "non-empty list"),
    ("message text", {"model": "assistant-extractive", "messages": ["hi"]}, "must be an object"),
    (
        "last from assistant",
        {"model": "assistant-extractive", "messages": [{"role": "assistant", "content": "Hi"}]},
        "The last message must be the user's question",
    ),
    (
        "only system",
        {"model": "assistant-extractive", "messages": [{"role": "system", "content": "Hi"}]},
        "The last message must be the user's question",
    ),
    ("empty question", {"model": "assistant-extractive", "messages": [user("  ")]}, "is empty"),
    ("long question", {"model": "assistant-extractive", "messages": [user(LONG)]}, "the limit"),
    (
        "content number",
        {"model": "assistant-extractive", "messages": [{"role": "user", "content": 42}]},
        "must be text or a list of text parts, not a number",
    ),
    (
        "image part",
        {
            "model": "assistant-extractive",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        },
        "only text parts",
    ),
    (
        "tool role",
        {"model": "assistant-extractive", "messages": [{"role": "tool", "content": "x"}]},
        "role must be user, assistant or system",
    ),
    (
        "stream text",
        {"model": "assistant-extractive", "messages": [user(TRADE)], "stream": "yes"},
        "stream must be true or false",
    ),
    (
        "fifty-one questions",
        {"model": "assistant-extractive", "messages": [user(TRADE)] * 51},
        "the limit is 50",
    ),
    (
        "two choices",
        {"model": "assistant-extractive", "messages": [user(TRADE)], "n": 2},
        "n must be 1",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
def test_bad_requests_get_a_400_error_object(server: str, body: object, message: str) -> None:
    status, data = post(server, body)
    said = assert_error(status, data, 400)
    assert message in said
    assert "assistant ask" not in said  # an API client is told no command line to run


def test_a_body_over_a_mebibyte_is_refused_unread(server: str) -> None:
    body = {"model": "assistant-extractive", "messages": [user("x" * (1 << 20))]}
    status, data = post(server, body)
    assert "over 1024 KiB" in assert_error(status, data, 413)


def test_other_paths_and_methods_under_v1_get_error_objects(server: str) -> None:
    status, raw = http(server + "v1/embeddings", "POST", b"{}", JSON)
    assert "GET /v1/models" in assert_error(status, json.loads(raw), 404)
    status, raw = http(server + "v1/chat/completions")  # GET where only POST is served
    assert "use POST" in assert_error(status, json.loads(raw), 405)
    for path, method in (("v1/models/", "GET"), ("v1/chat/completions/", "POST")):
        status, raw = http(server + path, method, b"{}" if method == "POST" else None, JSON)
        assert f"Unknown endpoint /{path}" in assert_error(status, json.loads(raw), 404)


@pytest.mark.parametrize("model", ["gpt-4o", "assistant-llm"])  # the second: no LLM is set
def test_an_unknown_model_is_a_404_as_openai_gives(server: str, model: str) -> None:
    status, data = post(server, {"model": model, "messages": [user(TRADE)]})
    assert f"Unknown model '{model}'" in assert_error(status, data, 404)


def test_the_sdk_sees_a_bad_request_and_an_unknown_model(server: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:  # as OpenAI answers an unknown model
        sdk(server).chat.completions.create(model="gpt-4o", messages=[user(TRADE)])
    assert caught.value.status_code == 404
    assert caught.value.body["param"] == "model" and caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        sdk(server).chat.completions.create(model="assistant-extractive", messages=[user("")])


def test_a_key_is_required_when_set_and_the_login_still_guards_the_web_app(
    web_corpus: tuple[Path, Path], tmp_path: Path, local: Assistant
) -> None:
    corpus, index = web_corpus
    env = {
        "ASSISTANT_API_KEY": KEY,
        "ASSISTANT_AUTH": "alice:s3cret",
        # A model configured (never asked here): both model names are served.
        "ASSISTANT_LLM": "openai-compatible",
        "ASSISTANT_LLM_URL": "http://127.0.0.1:9/v1",
    }
    proc, url = start_server(corpus, index, tmp_path / "key.log", env=env)
    try:
        body: dict[str, Any] = {"model": "assistant-extractive", "messages": [user(TRADE)]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            status, data = post(url, body, headers)
            assert "API key" in assert_error(status, data, 401)
            assert data["error"]["code"] == "invalid_api_key"
            status, _, raw = status_of(url + "v1/models", headers)
            assert_error(status, json.loads(raw), 401)
        with pytest.raises(openai.AuthenticationError):
            sdk(url, "wrong").chat.completions.create(**body)
        assert http(url + "config")[0] == 401  # the web app still needs its login
        client = sdk(url, KEY)
        assert [m.id for m in client.models.list()] == ["assistant-extractive", "assistant-llm"]
        reply = client.chat.completions.create(**body)
    finally:
        stop(proc)
    expected = local.ask(TRADE).to_dict()
    split_reply(reply.choices[0].message.content or "", expected)
    assert (reply.model_extra or {})["citations"] == expected["citations"]


def test_a_conversation_this_server_answered_is_not_answered_again(
    local: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    asked: list[str] = []
    ask_stream = local.ask_stream

    def counted(question: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(question.text if hasattr(question, "text") else question)
        return ask_stream(question, *args, **kwargs)

    monkeypatch.setattr(local, "ask_stream", counted)
    api = OpenAIApi(local, Admission(1, 0, 1))
    with TestClient(Starlette(routes=api.routes())) as client:
        url = "/v1/chat/completions"
        first = client.post(url, json={"model": "assistant-extractive", "messages": [user(AIGUN)]})
        content = first.json()["choices"][0]["message"]["content"]
        messages = [user(AIGUN), {"role": "assistant", "content": content}, user(FOLLOWUP)]
        second = client.post(url, json={"model": "assistant-extractive", "messages": messages})
        assert second.status_code == 200 and asked == [AIGUN, FOLLOWUP]
        messages[1]["content"] = "A reply this server did not write."
        third = client.post(url, json={"model": "assistant-extractive", "messages": messages})
    assert asked == [AIGUN, FOLLOWUP, AIGUN, FOLLOWUP]  # unknown history: answered again
    assert third.json()["citations"] == second.json()["citations"]


def test_with_a_login_and_no_key_the_api_stays_closed(local: Assistant) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    api = OpenAIApi(local, Admission(1, 0, 1), login=True)
    with TestClient(Starlette(routes=api.routes())) as client:
        for response in (
            client.get("/v1/models"),
            client.post(
                "/v1/chat/completions",
                json={"model": "assistant-extractive", "messages": [user(TRADE)]},
            ),
        ):
            assert "ASSISTANT_API_KEY" in assert_error(response.status_code, response.json(), 401)


def test_a_full_queue_is_a_429_with_retry_after_and_shares_the_web_apps_slots(
    web_corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    proc, url, hold = held_server(web_corpus, tmp_path)
    first: list[Any] = []
    body: dict[str, Any] = {"model": "assistant-extractive", "messages": [user(TRADE)]}
    worker = threading.Thread(
        target=lambda: first.append(sdk(url).chat.completions.create(**body)),
        daemon=True,
    )
    try:
        worker.start()
        hold_until(Path(f"{hold}.held"), 1, proc)  # the API's answer holds the one slot
        status, headers, raw = status_of(
            url + "v1/chat/completions", JSON, "POST", json.dumps(body).encode()
        )
        with pytest.raises(openai.RateLimitError):
            sdk(url).chat.completions.create(**body)
        web = at_once(url, TRADE, api_name="/answer")  # the web app's slots are the same
        hold.unlink()
        worker.join(120)
        after = sdk(url).chat.completions.create(**body)
    finally:
        stop(proc)
    assert assert_error(status, json.loads(raw), 429, "rate_limit_error") == BUSY
    assert int({k.lower(): v for k, v in headers.items()}["retry-after"]) >= 1
    assert web == {"error": BUSY, "busy": True}
    assert first and "$240 billion" in (first[0].choices[0].message.content or "")
    assert "$240 billion" in (after.choices[0].message.content or "")  # the slot was given back


def test_questions_waiting_in_numbers_hold_no_thread_and_the_rest_hear_busy_at_once(
    web_corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    """Forty questions waiting for the one slot must not take the server's threads: the
    page is still served, and the questions beyond the waiting places get their 429 at
    once, not when the wait runs out (it used to take every thread of the pool)."""
    proc, url, hold = held_server(web_corpus, tmp_path, waiting=40)
    body = json.dumps({"model": "assistant-extractive", "messages": [user(TRADE)]}).encode()
    statuses: list[int] = []

    def ask() -> None:
        request = urllib.request.Request(
            url + "v1/chat/completions", data=body, headers=JSON, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    askers = [threading.Thread(target=ask, daemon=True) for _ in range(46)]
    try:
        askers[0].start()
        hold_until(Path(f"{hold}.held"), 1, proc)  # the first holds the one slot
        for asker in askers[1:]:
            asker.start()
        for _ in range(600):  # 1 answering, 40 waiting: 5 hear busy, within 30 s
            if statuses.count(429) == 5:
                break
            time.sleep(0.05)
        busy_at_once = list(statuses)
        page, _, _ = status_of(url)  # served while forty wait
        hold.unlink()
        for asker in askers:
            asker.join(300)
    finally:
        stop(proc)
    assert busy_at_once == [429] * 5
    assert page == 200
    assert sorted(statuses) == [200] * 41 + [429] * 5


@pytest.mark.slow
def test_twenty_clients_at_once_get_answers_or_429s_never_5xx(server: str) -> None:
    figures = run_load(server + "v1", clients=20, questions=5)
    print(f"\nopenai load: {figures}")
    assert figures["other"] == {}  # no 5xx, no other status, no broken connection
    assert figures["answers"] + figures["busy_429"] == 100 and figures["answers"] > 0


def readme_block(marker: str) -> str:
    """The fenced block that follows `<!-- marker -->` in README.md."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```", text, re.S)
    assert found, f"README.md has no block marked {marker}"
    assert "http://127.0.0.1:7860/v1" in found.group(1)
    return found.group(1)


def test_the_readme_examples_run_as_written(server: str) -> None:
    base = server.rstrip("/")  # the examples' port, 7860, is the test server's here
    python = readme_block("openai-python").replace("http://127.0.0.1:7860", base)
    run = subprocess.run(
        [sys.executable, "-c", python], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "Treaty of Aigun" in run.stdout and "[1]" in run.stdout and "Sources:" in run.stdout
    commands = readme_block("openai-curl").replace("http://127.0.0.1:7860", base)
    run = subprocess.run(["bash", "-c", commands], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert '"citations"' in run.stdout and "data: [DONE]" in run.stdout


def test_a_pdf_source_in_the_reply_names_its_page() -> None:
    cited = Citation(
        1,
        "amur:1",
        "amur",
        "Amur Basin Report",
        "",
        "source",
        "Rivers",
        5,
        20,
        "It opened in 2022.",
        0,
        40,
        page=2,
    )
    answer = Answer(
        question="When?", text="It opened in 2022. [1]", abstained=False, citations=[cited]
    )
    assert "[1] Amur Basin Report (source), Rivers, p. 2" in reply_text(answer)
