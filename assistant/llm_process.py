"""A GGUF model served from a child process, so that a crash in llama.cpp cannot take the
assistant down.

llama.cpp is native code: a build that does not match the CPU, or a bug in a kernel, ends the
process that loaded it with a signal, before any Python `except` can run. The `llama-cpp`
backend therefore never loads the model in the assistant's own process. It starts llama.cpp's
OpenAI-compatible server (`python -m llama_cpp.server`, from llama-cpp-python) on 127.0.0.1 and
talks to it like any other server. If the child dies, the question in flight gets the extractive
answer with a note, and the next question starts a new child.
"""

from __future__ import annotations

import atexit
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

INSTALL_HINT = (
    "Install the LLM extra: make llm (or see README.md, 'Generative answers', for pip on any "
    "x86-64 machine)."
)


class ModelProcessError(AssistantError):
    """The model's child process could not start or has stopped."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: ask Linux to end it when the assistant's process ends, however it ends."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: atexit still stops the child on a normal exit
        pass


def describe_exit(code: int | None) -> str:
    """How a child process ended, in words ("crashed with SIGSEGV")."""
    if code is None:
        return "is running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"crashed with {name}"
    return f"exited with code {code}"


class ModelServer:
    """One llama.cpp server child process for a GGUF file, on a free port of 127.0.0.1."""

    def __init__(
        self, model_path: Path, context_window: int, threads: int = 2, start_timeout: float = 180
    ) -> None:
        self.model_path = model_path
        self.context_window = context_window
        self.threads = threads
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log_path = Path(tempfile.gettempdir()) / f"assistant-llm-{id(self):x}.log"
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_description(self) -> str:
        return describe_exit(self.proc.poll() if self.proc is not None else None)

    def ensure_running(self) -> str:
        """The server's base URL (…/v1), starting the child first if it is not running."""
        with self._lock:
            if not self.alive():
                self._start()
            return self.url

    def _start(self) -> None:
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(self.context_window),
            "--n_threads",
            str(self.threads),
        ]
        log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            log.close()
        self.url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ModelProcessError(
                    f"The model process for {self.model_path.name} {self.exit_description()} "
                    f"while loading. Its last output: {self.log_tail()!r}",
                    "Check that the file is a GGUF model llama.cpp supports, and that "
                    "llama-cpp-python was built for this CPU (README.md, 'Generative answers').",
                )
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ModelProcessError(
            f"The model process for {self.model_path.name} did not start within "
            f"{self.start_timeout:.0f} s.",
            "Try again; a large model on a slow disk may need longer.",
        )

    def log_tail(self, chars: int = 300) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


_SERVERS: dict[tuple[str, int, int], ModelServer] = {}
_SERVERS_LOCK = threading.Lock()


def model_server(model_path: Path, context_window: int, threads: int = 2) -> ModelServer:
    """The process-wide server for this model and window (one child per model, not per caller)."""
    key = (str(model_path.resolve()), context_window, threads)
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _SERVERS[key] = ModelServer(model_path, context_window, threads)
        return server


@atexit.register
def _stop_all() -> None:
    for server in list(_SERVERS.values()):
        server.stop()


class ChildProcessLLM:
    """The llama-index chat interface of a model served by a child process: the calls the
    answerer and the follow-up rewriter make, each on a running child (restarted if it died)."""

    def __init__(self, server: ModelServer, client: Callable[[str], Any]) -> None:
        self.server = server
        self._client = client  # base URL -> llama-index LLM for it
        self._clients: dict[str, Any] = {}

    def _llm(self) -> Any:
        url = self.server.ensure_running()
        if url not in self._clients:
            self._clients = {url: self._client(url)}
        return self._clients[url]

    def _failed(self, exc: Exception) -> Exception:
        if self.server.alive():
            return exc
        return ModelProcessError(
            f"the model process {self.server.exit_description()}; a new one starts with the "
            "next question"
        )

    def stream_chat(self, messages: Any) -> Iterator[Any]:
        try:
            yield from self._llm().stream_chat(messages)
        except Exception as exc:
            raise self._failed(exc) from exc

    def chat(self, messages: Any) -> Any:
        try:
            return self._llm().chat(messages)
        except Exception as exc:
            raise self._failed(exc) from exc
