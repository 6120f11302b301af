"""Errors written for the person at the keyboard: what went wrong, and what to run next."""

from __future__ import annotations


class AssistantError(Exception):
    """Base of the errors the CLI and the web app show as a message rather than a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class InputError(AssistantError):
    """The user's own input was wrong: an empty question, an unknown id, a missing file."""

    exit_code = 2


class IndexStateError(AssistantError):
    """The index cannot be used as it is: built with other settings, unreadable, or missing."""

    exit_code = 1


class IndexBusyError(AssistantError):
    """Another process is writing the index."""

    exit_code = 1


class StoreUnavailableError(AssistantError):
    """The configured Chroma server cannot be reached."""

    exit_code = 2
