"""The OpenAI chat-completions wire format, as the /v1 routes (`ui.openai_api`) speak it:
requests read and checked, error objects, and replies whole or as server-sent chunks, with the
citations in the extension fields `citations` and `short_answer`, as `assistant ask --json`
prints them.

Built from library calls only: answers and their citations live in `assistant`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from assistant import Answer, InputError, Scope
from ui.inputs import kind_of

EXTRACTIVE = "assistant-extractive"
LLM = "assistant-llm"
MAX_BODY = 1 << 20  # bytes; a conversation of 50 questions of 2,000 characters fits easily
MAX_QUESTIONS = 50  # user messages in one conversation
_IGNORED_ROLES = ("system", "developer")
_PIECE = re.compile(r".+?(?:[.!?](?= )|\n|$)", re.S)  # a streamed piece: a sentence or a line


class ApiError(Exception):
    """A refusal, as OpenAI's API words one: an HTTP status and an error object."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind, self.headers = kind, headers or {}

    def response(self) -> JSONResponse:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": error}, status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


@dataclass(frozen=True)
class ChatRequest:
    """What a chat completion request asks: the model, whether to stream, and the user and
    assistant messages in order (system messages are dropped); the last one is the question."""

    model: str
    stream: bool
    messages: tuple[tuple[str, str], ...]
    scope: Scope = field(default_factory=Scope)  # the extension field `scope`: docs and kinds
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage

    @property
    def question(self) -> str:
        return self.messages[-1][1]


def _text(content: object, where: str) -> str:
    """A message's content as text: a string, or a list of text parts; null is empty."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                raise bad_request(
                    f"{where}.content may hold only text parts like "
                    '{"type": "text", "text": "..."}; this assistant reads no images or files.',
                    f"{where}.content",
                )
            parts.append(part["text"])
        return "".join(parts)
    raise bad_request(
        f"{where}.content must be text or a list of text parts, not {kind_of(content)}.",
        f"{where}.content",
    )


def parse_request(body: object, models: tuple[str, ...]) -> ChatRequest:
    """The request, checked; a 400 error object that says what to fix when it is malformed."""
    if not isinstance(body, dict):
        raise bad_request(f"The request body must be a JSON object, not {kind_of(body)}.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request(f"Name a model: one of {', '.join(models)}.", "model")
    if model not in models:
        raise ApiError(
            404,  # as OpenAI answers an unknown model (the SDK's NotFoundError)
            f"Unknown model {model[:80]!r}; this server answers with {', '.join(models)} "
            "(GET /v1/models lists them).",
            "model",
            "model_not_found",
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request(f"stream must be true or false, not {kind_of(stream)}.", "stream")
    options = body.get("stream_options")
    if options is not None and (
        not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool)
    ):
        raise bad_request(
            'stream_options must be an object like {"include_usage": true}.', "stream_options"
        )
    include_usage = bool(stream and options and options.get("include_usage"))
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or n != 1):
        raise bad_request("This server gives one answer per request: n must be 1.", "n")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request(
            'messages must be a non-empty list, e.g. [{"role": "user", "content": "What is the '
            'Middle Corridor?"}].',
            "messages",
        )
    messages: list[tuple[str, str]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object, not {kind_of(message)}.", where)
        role = message.get("role")
        if role in _IGNORED_ROLES:
            _text(message.get("content"), where)
            continue
        if role not in ("user", "assistant"):
            raise bad_request(
                f"{where}.role must be user, assistant or system, not {str(role)[:40]!r}.",
                f"{where}.role",
            )
        messages.append((role, _text(message.get("content"), where)))
    if not messages or messages[-1][0] != "user":
        raise bad_request(
            "The last message must be the user's question; earlier user and assistant "
            "messages are the conversation it follows.",
            "messages",
        )
    asked = sum(role == "user" for role, _ in messages)
    if asked > MAX_QUESTIONS:
        raise bad_request(
            f"The conversation holds {asked} questions; the limit is {MAX_QUESTIONS}. Start a new "
            "conversation with the question on its own.",
            "messages",
        )
    scope = body.get("scope")
    if scope is not None and not isinstance(scope, dict):
        raise bad_request(
            'scope must be an object like {"docs": ["power-of-siberia"], "kinds": ["source"]}, '
            f"not {kind_of(scope)}.",
            "scope",
        )
    try:
        chosen = Scope.from_dict(scope)
    except InputError as exc:
        raise bad_request(exc.message, "scope") from None
    return ChatRequest(model, bool(stream), tuple(messages), chosen, include_usage)


def reply_text(answer: Answer) -> str:
    """The answer with its [n] markers, then its sources as a numbered list."""
    if not answer.citations:
        return answer.text
    lines = [answer.text, "", "Sources:"]
    for c in answer.citations:
        where = f"{c.title} ({c.kind})" + (f", {c.section}" if c.section else "")
        where += f", p. {c.page}" if c.page else ""
        lines.append(f"[{c.n}] {where}" + (f" <{c.url}>" if c.url else ""))
        lines.append(f'    "{c.quote}"')
    return "\n".join(lines)


def extension(answer: Answer) -> dict[str, Any]:
    """The fields beyond OpenAI's: the citations and the short answer, as `ask --json` has them."""
    data = answer.to_dict(include_passages=False)
    scoped: dict[str, Any] = {k: data[k] for k in ("scope", "lead") if k in data}  # if scoped
    return {"citations": data["citations"], "short_answer": data["short_answer"], **scoped}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's `usage` object (tokens as the server counts them: see OpenAIApi.usage)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(answer: Answer, model: str, used: dict[str, int]) -> dict[str, Any]:
    """The whole reply, as a `chat.completion` object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply_text(answer)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": used,
        **extension(answer),
    }


def chunks(answer: Answer, model: str, used: dict[str, int] | None = None) -> list[str]:
    """The reply as server-sent `chat.completion.chunk` events, a sentence or a line each; the
    last chunk carries the citations, then (with `used`, asked for by
    stream_options.include_usage) a chunk with no choices and the usage, then `[DONE]`."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def event(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {**head, "choices": [choice], **extra}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in _PIECE.findall(reply_text(answer))]
    events.append(event({}, "stop", **extension(answer)))
    if used is not None:
        data = {**head, "choices": [], "usage": used}
        events.append(f"data: {json.dumps(data, ensure_ascii=False)}\n\n")
    events.append("data: [DONE]\n\n")
    return events


async def read_json(request: Request) -> object:
    """The request body as JSON, read up to MAX_BODY bytes."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY:
            raise ApiError(
                413,
                f"The request body is over {MAX_BODY // 1024} KiB; send a shorter conversation.",
            )
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise bad_request(
            'The request body is not JSON. Send an object like {"model": "assistant-extractive", '
            '"messages": [{"role": "user", "content": "What is the Middle Corridor?"}]}.'
        ) from None
