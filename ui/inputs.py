"""Checks on what a browser or an API client sends: the callbacks read raw input
(`preprocess=False`), so a wrong type or a megabyte id gets a short message, not a
component's error."""

from __future__ import annotations

import re

import gradio as gr

from assistant import AssistantError

MAX_MESSAGE = 2000
MAX_ID = 200  # passage and document ids are far shorter; longer input is refused unread


def kind_of(value: object) -> str:
    """What a JSON value is, in words, for a message about it."""
    return {list: "a list", dict: "an object", bool: "true or false", str: "text"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def as_text(value: object, what: str) -> str:
    """A text input as text; anything else sent to the API is refused with a message."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{what} must be text, not {kind_of(value)}.", title="Bad request")
    return value


def as_id(value: object, what: str) -> str | None:
    """An id as text, or None when it is too long to be one (it is then not read at all)."""
    text = as_text(value, what).strip()
    return text if len(text) <= MAX_ID else None


# The library's hints are written for its command line; on the page and to OpenAI API
# clients they name no command to run. A command-line hint not matched here is left out.
_WEB_HINTS = (
    (re.compile(r'for example: assistant (?:ask|cite) "(.+)"'), r"for example: \1"),
    (
        re.compile(r"Passage ids appear in .*? output"),
        "Passage ids appear under each citation in the Sources panel and in Find support results",
    ),
)
_COMMAND_LINE = re.compile(r"`assistant |\bassistant (?:ask|cite|show|index|serve)\b")


def web_text(exc: AssistantError) -> str:
    """An error's message and hint as the page and the OpenAI API say them: no command."""
    hint = exc.hint or ""
    for pattern, replacement in _WEB_HINTS:
        hint = pattern.sub(replacement, hint)
    if _COMMAND_LINE.search(hint):
        hint = ""
    return f"{exc.message} {hint}".strip()
