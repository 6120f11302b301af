"""The corpus PDFs, served beside the web app so that a citation of a PDF can open the file at
its page: `GET /pdf/{doc_id}` returns the file of that document of the index.

Only a PDF that is a document of the loaded index is served, found by its id, never by a path
from the request; the file must still lie inside the corpus folder. When the web app requires
a login, so does this route (the login's own cookie, checked as Gradio checks it)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from assistant import Assistant, AssistantError

ROUTE = "pdf"
log = logging.getLogger(__name__)


def pdf_href(doc_id: str, page: int | None = None) -> str:
    """The link to a document's PDF (at a page), relative to the app's own address, so that
    it holds behind a proxy that serves the app under a path."""
    href = f"{ROUTE}/{quote(doc_id, safe='')}"
    return f"{href}#page={page}" if page else href


class PdfFiles:
    """The route that serves the index's PDF documents."""

    def __init__(self, assistant: Assistant, login: bool = False) -> None:
        """`login`: whether the web app requires one; the route then serves signed-in
        readers only."""
        self.assistant = assistant
        self.login = login

    def routes(self) -> list[Route]:
        return [Route(f"/{ROUTE}/{{doc_id}}", self.serve, methods=["GET", "HEAD"])]

    def serve(self, request: Request) -> Response:
        """The PDF of one document, shown in the browser; 404 for anything else."""
        if self.login and not signed_in(request):
            return PlainTextResponse("Sign in to the web app first.", status_code=401)
        path = self.path(str(request.path_params.get("doc_id", "")))
        if path is None:
            return PlainTextResponse("No PDF document with that id.", status_code=404)
        return FileResponse(
            path,
            media_type="application/pdf",
            filename=path.name,
            content_disposition_type="inline",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    def path(self, doc_id: str) -> Path | None:
        """The file of the PDF document `doc_id` of the index, if it still lies in the corpus
        folder (links followed); None otherwise."""
        if not doc_id or len(doc_id) > 200:
            return None
        try:
            doc = self.assistant.document(doc_id)
        except AssistantError:
            return None
        if not doc.meta.file.lower().endswith(".pdf"):
            return None
        root = Path(self.assistant.settings.corpus_dir).resolve()
        try:
            path = (root / doc.meta.file).resolve()
        except (OSError, RuntimeError):  # a loop of links
            return None
        if root not in path.parents or not path.is_file():
            log.warning("not serving %s: the file is gone or outside the corpus", doc_id)
            return None
        return path


def signed_in(request: Request) -> bool:
    """Whether the request carries a login of the Gradio app that serves it."""
    app = request.app
    tokens = getattr(app, "tokens", None)
    cookie_id = getattr(app, "cookie_id", None)
    if not isinstance(tokens, dict) or cookie_id is None:
        return False  # not the Gradio app: no way to tell, so no
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return token is not None and tokens.get(token) is not None
