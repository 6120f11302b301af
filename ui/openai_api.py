"""The OpenAI-compatible API, served beside the web app on the same host and port:
`GET /v1/models` and `POST /v1/chat/completions`, whole or streamed as server-sent events.

A request's `messages` are the conversation: a follow-up is resolved from the earlier user
turns as the chat resolves it. The reply's content is the cited answer with its [n] markers,
then a numbered list of its sources; the citations travel in extension fields (see
`ui.openai_wire`). Answers take the web app's slots (`ui.admission.Admission`): when every slot
and the waiting room are taken, the reply is 429 with Retry-After. Every refusal is an
OpenAI-style error object.

Built from library calls only: retrieval, answers and conversations live in `assistant`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator

from cachetools import LRUCache
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from assistant import Answer, Assistant, AssistantError, ChatSession, InputError, Scope, Turn
from ui.admission import BUSY, Admission
from ui.inputs import web_text
from ui.openai_wire import (
    EXTRACTIVE,
    LLM,
    ApiError,
    ChatRequest,
    bad_request,
    chunks,
    completion,
    parse_request,
    read_json,
    reply_text,
    usage,
)

RETRY_AFTER_S = 1
REMEMBERED = 1024  # conversations whose turns are kept, so that a follow-up is not answered twice
log = logging.getLogger(__name__)


_SERVED = {"/v1/models": "GET", "/v1/chat/completions": "POST"}
_ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "assistant"}


class OpenAIApi:
    """The /v1 routes over one assistant, taking the same slots as the web app's answers."""

    def __init__(self, assistant: Assistant, admission: Admission, login: bool = False) -> None:
        """`login`: whether the web app requires one; the API then stays closed unless an API
        key is set, so that it never answers what the login protects."""
        self.assistant = assistant
        self.admission = admission
        self.login = login
        self._key = assistant.settings.api_key
        self._lock = threading.Lock()
        self._extractive: Assistant | None = None
        self._remembered: LRUCache[str, tuple[Turn, ...]] = LRUCache(REMEMBERED)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model:str}", self.get_model, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/{rest:path}", self.not_served, methods=list(_ANY_METHOD)),
        ]

    async def not_served(self, request: Request) -> Response:
        """Any other path or method under /v1, refused as OpenAI refuses one."""
        allowed = _SERVED.get(request.url.path)  # "/v1/models/" is no path of ours
        if allowed:
            return ApiError(
                405,
                f"{request.method} is not allowed on {request.url.path}; use {allowed}.",
                code="method_not_allowed",
                headers={"Allow": allowed},
            ).response()
        return ApiError(
            404,
            f"Unknown endpoint {request.url.path}; this server serves GET /v1/models and "
            "POST /v1/chat/completions.",
            code="unknown_url",
        ).response()

    def models(self) -> tuple[str, ...]:
        """The model names served: the language model's only when one is configured."""
        if self.assistant.settings.llm.backend == "none":
            return (EXTRACTIVE,)
        return (EXTRACTIVE, LLM)

    def assistant_for(self, model: str) -> Assistant:
        if model == LLM or self.assistant.settings.llm.backend == "none":
            return self.assistant
        with self._lock:  # extractive answers beside a configured model: a second assistant
            if self._extractive is None:
                settings = self.assistant.settings
                extractive = settings.model_copy(
                    update={"llm": settings.llm.model_copy(update={"backend": "none"})}
                )
                self._extractive = Assistant(extractive, self.assistant.embedder)
            return self._extractive

    def check_key(self, request: Request) -> None:
        if self._key is None:
            if self.login:
                raise ApiError(
                    401,
                    "The web app requires a login and no API key is set, so the API is closed. "
                    "Set ASSISTANT_API_KEY on the server and send it as a bearer token.",
                    code="invalid_api_key",
                )
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._key.encode()
        ):
            raise ApiError(
                401,
                "Missing or wrong API key. Send the key set in ASSISTANT_API_KEY as "
                "`Authorization: Bearer KEY` (the openai SDK's api_key).",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def list_models(self, request: Request) -> Response:
        try:
            self.check_key(request)
        except ApiError as exc:
            return exc.response()
        data = [_model(m) for m in self.models()]
        return JSONResponse({"object": "list", "data": data})

    async def get_model(self, request: Request) -> Response:
        """GET /v1/models/{model}: the model, or a 404 as OpenAI gives for one it lacks."""
        try:
            self.check_key(request)
        except ApiError as exc:
            return exc.response()
        model = request.path_params["model"]
        if model not in self.models():
            return ApiError(
                404,
                f"Unknown model {model[:80]!r}; this server answers with "
                f"{', '.join(self.models())}.",
                "model",
                "model_not_found",
            ).response()
        return JSONResponse(_model(model))

    def usage(self, chat: ChatRequest, answer: Answer) -> dict[str, int]:
        """Tokens as the embedding model's tokenizer counts them: the messages read, and the
        reply written (no language model may be involved to count its own)."""
        count = self.assistant.embedder.count_tokens
        asked = sum(count([text for _, text in chat.messages]))
        return usage(asked, count([reply_text(answer)])[0])

    async def chat_completions(self, request: Request) -> Response:
        try:
            self.check_key(request)
            chat = parse_request(await read_json(request), self.models())
            self.assistant.clean(chat.question)  # an empty or long question: 400 before a slot
            self._check_scope(chat.scope)
            async with self.admission.waited_slot() as admitted:
                if not admitted:
                    raise ApiError(
                        429,
                        BUSY,
                        code="rate_limit_exceeded",
                        kind="rate_limit_error",
                        headers={"Retry-After": str(RETRY_AFTER_S)},
                    )
                answer, used = await run_in_threadpool(self.answer, chat)
        except ApiError as exc:
            return exc.response()
        except InputError as exc:
            return bad_request(web_text(exc), "messages").response()
        except AssistantError as exc:
            return ApiError(503, exc.message, kind="server_error").response()
        except Exception:
            log.exception("chat completion failed")
            message = "The assistant failed to answer; the server's log has the details."
            return ApiError(500, message, kind="server_error").response()
        if not chat.stream:
            return JSONResponse(completion(answer, chat.model, used))
        events = chunks(answer, chat.model, used if chat.include_usage else None)

        async def send() -> AsyncIterator[str]:
            for item in events:
                yield item

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(send(), media_type="text/event-stream", headers=headers)

    def answer(self, chat: ChatRequest) -> tuple[Answer, dict[str, int]]:
        """The answer to the last question and its usage, computed in a worker thread; the
        caller holds a slot of the shared admission."""
        session = ChatSession(self.assistant_for(chat.model), scope=chat.scope)
        self._resume(session, chat)
        answer = session.ask(chat.question)
        replied = (*chat.messages, ("assistant", reply_text(answer)))
        self._remember(_key(chat.model, replied), tuple(session.turns))
        return answer, self.usage(chat, answer)

    def _check_scope(self, scope: Scope) -> None:
        """A 400 naming the valid ids when the scope names a document or kind not indexed."""
        try:
            scope.resolve({s.document.id: s.document.meta.kind for s in self.assistant.sources()})
        except InputError as exc:
            raise bad_request(web_text(exc), "scope") from None

    def _resume(self, session: ChatSession, chat: ChatRequest) -> None:
        """The session's turns from the earlier messages: those of the longest start of the
        conversation this server answered itself, then the later questions asked again."""
        earlier = chat.messages[:-1]
        start = 0
        for end in range(len(earlier), 0, -1):
            if earlier[end - 1][0] != "assistant":
                continue
            with self._lock:
                found = self._remembered.get(_key(chat.model, earlier[:end]))
            if found is not None:
                session.turns, start = list(found), end
                break
        for role, text in earlier[start:]:
            if role == "user":
                with contextlib.suppress(InputError):  # the chat records no refused turn
                    session.ask(text)

    def _remember(self, key: str, turns: tuple[Turn, ...]) -> None:
        with self._lock:
            self._remembered[key] = turns


def _key(model: str, messages: tuple[tuple[str, str], ...]) -> str:
    """A conversation's identity: the model and its messages (whitespace at the ends aside)."""
    blob = json.dumps([model, [[role, text.strip()] for role, text in messages]])
    return hashlib.sha256(blob.encode()).hexdigest()
