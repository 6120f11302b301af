"""Conversations of the web app that come back after a reload of the page and after a restart
of the server.

Where they live: on the server, one JSON file per conversation (`ChatSession.to_json()` with a
revision number) in `web-sessions/` inside the index folder, named by a random key; the
browser keeps only that key, in its localStorage (`gr.BrowserState`). Chosen over keeping the
whole conversation in the browser because:

- what a browser sends back is then a key, checked for its form, never answers, citations or
  markup that the page would show: the chat stays the server's own record;
- it survives a restart (the BrowserState's secret is kept in the same folder, so the key a
  browser holds still reads afterwards), and a long conversation neither rides along with
  every request nor fills the browser's few megabytes of storage.

Two tabs of one browser share that one key, so both open on the conversation last written
from the browser. From then on each tab keeps its own conversation: a tab whose copy has
fallen behind the file (the other tab added a turn since it loaded) writes its next turn under
a new key instead of overwriting the other's. No turn is lost, and a reload brings back the
conversation this browser added to last.

Bounded: at most `kept` conversations, the least recently used dropped first, and at most
`max_bytes` each (the oldest turns leave the file first). A file that does not read as a
conversation (cut short, edited by hand, written by another version) opens a fresh one: a
warning in the log, never an error on the page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant import Assistant, ChatSession, Settings, Turn, atomic_write_text
from ui import markup

log = logging.getLogger(__name__)

FOLDER = "web-sessions"  # inside the index folder
FORMAT = 1
KEPT = 1000
MAX_BYTES = 512_000
STORAGE_KEY = "assistant-conversation"  # the browser's localStorage entry
SHOWN_QUESTION = 300  # characters of a question shown in the chat
_KEY = re.compile(r"[A-Za-z0-9_-]{22}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{32}")
_CHAT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")

Message = dict[str, str]


def new_key() -> str:
    """A conversation's key: 128 random bits, URL- and file-name-safe."""
    return secrets.token_urlsafe(16)


def as_key(value: object) -> str | None:
    """What a browser sent as its key, if it has a key's form (else None: never a path)."""
    return value if isinstance(value, str) and _KEY.fullmatch(value) else None


def user_message(question: str) -> Message:
    """A question as the chat shows it."""
    shown = question if len(question) <= SHOWN_QUESTION else question[:SHOWN_QUESTION] + "…"
    return {"role": "user", "content": markup.esc(shown)}


def chat_messages(turns: list[Turn]) -> list[Message]:
    """The chat of a conversation, rebuilt from its turns as it was shown."""
    out: list[Message] = []
    for i, turn in enumerate(turns):
        out.append(user_message(turn.question))
        out.append({"role": "assistant", "content": markup.answer_html(turn.answer, i)})
    return out


@dataclass
class Stored:
    """A conversation read back, and the revision of the file it came from."""

    chat: ChatSession
    revision: int


class SessionStore:
    """Conversations on disk, one file per key; written whole and atomically."""

    def __init__(self, folder: Path, kept: int = KEPT, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.kept = kept
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> SessionStore:
        return cls(Path(settings.index_dir) / FOLDER)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def secret(self) -> str:
        """The secret the browser's copy of the key is sealed with, the same after a restart."""
        path = self.folder / ".browser-secret"
        try:
            value = path.read_text(encoding="utf-8").strip()
            if _SECRET.fullmatch(value):
                return value
        except (OSError, UnicodeDecodeError):
            pass
        value = secrets.token_urlsafe(24)
        try:
            atomic_write_text(path, value)
        except OSError as exc:
            log.warning("Conversations will not survive a restart: %s", exc)
        return value

    def load(self, assistant: Assistant, key: str) -> Stored | None:
        """The conversation under `key`, or None when there is none or it does not read."""
        data = self._read(key)
        if data is None:
            return None
        try:
            chat = _restore(assistant, data["chat"])
        except Exception as exc:  # any file that does not read opens a fresh conversation
            log.warning("Conversation %s does not read back (%s); starting afresh.", key, exc)
            return None
        with contextlib.suppress(OSError):
            os.utime(self.path(key))  # read: recently used, pruned last
        return Stored(chat, data["revision"])

    def save(self, key: str, chat: ChatSession, base: int) -> tuple[str, int]:
        """Write `chat`, read at revision `base`, under `key`; returns the key and revision it
        now has: a new key when the file moved past `base` (another tab wrote to it)."""
        data = json.loads(chat.to_json())
        with self._lock:
            current = self._read(key)
            if current is not None and current["revision"] > base:
                key = new_key()
            revision = base + 1
            try:
                atomic_write_text(self.path(key), self._encode(data, revision))
                self._prune(keep=key)
            except OSError as exc:
                log.warning("Could not keep conversation %s: %s", key, exc)
                return key, base
        return key, revision

    def keys(self) -> list[str]:
        """The stored keys, the most recently used first."""
        return [p.stem for _, p in self._files()]

    def _files(self) -> list[tuple[float, Path]]:
        found = []
        for path in self.folder.glob("*.json"):
            if as_key(path.stem) is None:
                continue
            try:
                found.append((path.stat().st_mtime, path))
            except OSError:
                continue  # removed meanwhile
        return sorted(found, reverse=True)

    def _prune(self, keep: str) -> None:
        for _, path in self._files()[self.kept :]:
            if path.stem != keep:
                path.unlink(missing_ok=True)

    def _encode(self, chat: dict[str, Any], revision: int) -> str:
        """The file's text, its oldest turns left out as needed to fit in `max_bytes`."""
        turns = list(chat.get("turns", []))

        def dump(kept: list[Any]) -> str:
            record = {"format": FORMAT, "revision": revision, "chat": {**chat, "turns": kept}}
            return json.dumps(record, ensure_ascii=False)

        size = len(dump([]).encode())
        sizes = [len(json.dumps(t, ensure_ascii=False).encode()) + 1 for t in turns]
        total = size + sum(sizes)
        drop = 0
        while drop < len(turns) and total > self.max_bytes:
            total -= sizes[drop]
            drop += 1
        return dump(turns[drop:])

    def _read(self, key: str) -> dict[str, Any] | None:
        """The file's record if it has the expected shape, else None."""
        if as_key(key) is None:
            return None
        try:
            with self.path(key).open("rb") as handle:
                raw = handle.read(self.max_bytes + 1)
        except OSError:
            return None
        if len(raw) > self.max_bytes:
            log.warning("Conversation %s is larger than expected; starting afresh.", key)
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:  # not UTF-8, not JSON
            log.warning("Conversation %s is not readable JSON; starting afresh.", key)
            return None
        revision = data.get("revision") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or type(revision) is not int
            or revision < 0
            or not isinstance(data.get("chat"), dict)
        ):
            log.warning("Conversation %s is not in the expected form; starting afresh.", key)
            return None
        return data


def _restore(assistant: Assistant, data: dict[str, Any]) -> ChatSession:
    """A conversation from its JSON, checked to be one the page can show; raises otherwise."""
    turns = data.get("turns")
    if not isinstance(turns, list):
        raise ValueError("turns is not a list")
    for t in turns:
        answer = t.get("answer") if isinstance(t, dict) else None
        if not isinstance(answer, dict):
            raise ValueError("a turn without an answer")
        for name, value in (("question", t.get("question")), ("standalone", t.get("standalone"))):
            if not isinstance(value, str):
                raise ValueError(f"{name} is not text")
        if not isinstance(answer.get("answer"), str) or not isinstance(
            answer.get("abstained"), bool
        ):
            raise ValueError("an answer without its text")
        if not isinstance(t.get("at", 0.0), int | float):
            raise ValueError("at is not a time")
    chat = ChatSession.from_json(assistant, json.dumps(data))
    if not isinstance(chat.id, str) or not _CHAT_ID.fullmatch(chat.id):
        chat.id = new_key()[:12]  # it names the export's file
    # What the page will do with it, done once here: anything odd fails now, not on the page.
    chat_messages(chat.turns)
    markup.sources_panel(chat.turns, {})
    chat.export_markdown()
    return chat
