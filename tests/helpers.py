"""Small builders shared by the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def make_pdf(path: Path, lines: list[str], title: str | None = None) -> Path:
    """Write a one-page PDF whose text layer holds `lines` (ASCII), using only the stdlib."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    info = f"<< /Title ({esc(title)}) >>" if title else "<< >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info.encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


PdfRun = tuple[str, float, float, float, str]  # (font: "regular" | "bold", size, x, y, text)


def build_pdf(path: Path, pages: list[list[PdfRun]], title: str | None = None) -> Path:
    """Write a PDF (612x792 pt pages) whose text runs sit where they say, in Helvetica or
    Helvetica-Bold at the given size: for headings, columns and line breaks as a layout has
    them. Each run is its own text object, in the order given."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    fonts = {"regular": "F1", "bold": "F2"}
    # 1 catalog, 2 page tree, 3-4 fonts, 5 info, then a page and its content per page.
    kids = [6 + 2 * i for i in range(len(pages))]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>",
        (f"<< /Title ({esc(title)}) >>" if title else "<< >>").encode("latin-1"),
    ]
    for i, runs in enumerate(pages):
        ops = [
            f"BT /{fonts[font]} {size:g} Tf 1 0 0 1 {x:g} {y:g} Tm ({esc(text)}) Tj ET"
            for font, size, x, y, text in runs
        ]
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % (kids[i] + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def column_runs(
    lines: list[tuple[str, str]], x: float, top: float, size: float = 10, leading: float = 13
) -> list[PdfRun]:
    """A column of text from the top down: (kind, text) rows, kind "h1"/"h2" for headings
    (bold, larger, with space around them), "p" for a body line, "" for a blank line."""
    runs: list[PdfRun] = []
    y = top
    for kind, text in lines:
        if kind == "h1":
            runs.append(("bold", size * 2, x, y, text))
            y -= size * 3
        elif kind == "h2":
            y -= leading * 0.5
            runs.append(("bold", size * 1.4, x, y, text))
            y -= leading * 1.6
        elif kind == "p":
            runs.append(("regular", size, x, y, text))
            y -= leading
        else:
            y -= leading
    return runs


def cli_command(corpus: Path, index: Path, *args: str) -> list[str]:
    """`assistant ARGS...` on a corpus and index, as a command line for a separate process."""
    return [
        sys.executable,
        "-m",
        "assistant.cli",
        "--corpus",
        str(corpus),
        "--index",
        str(index),
        *args,
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    """Poll `url` until it answers 200, the process dies, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{url} did not answer within {seconds:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask a server to stop, then make sure it has."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
