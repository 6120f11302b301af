"""The rules the suite itself follows: skips are counted and, in CI, fail unless expected;
property tests are derandomised in CI and print what reproduces a failure; a test that hangs
ends the run with every thread's stack instead of holding CI until its limit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from assistant.config import PROJECT_ROOT

SAMPLE = """
import pytest

def test_runs():
    assert True

def test_skips():
    pytest.skip("the frobnicator is not installed")
"""


def run_sample(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("CI", "ASSISTANT_NO_UNEXPECTED_SKIPS")
    }
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.skips", "-p", "no:cacheprovider"),
            *("-q", "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env={**environment, **env},
    )


def test_a_hanging_test_ends_the_run_with_its_stack(tmp_path: Path, request) -> None:
    # The suite runs under a per-test limit well above its longest test (about 25 s).
    assert 60 <= float(request.config.getini("timeout")) <= 600
    assert request.config.getini("timeout_method") == "thread"
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_waits_for_a_browser_that_never_answers():\n    time.sleep(60)\n"
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-c", str(PROJECT_ROOT / "pyproject.toml")),
            *("-p", "no:cacheprovider", "-o", "timeout=2", "--rootdir", str(tmp_path)),
            str(tmp_path / "test_hang.py"),
        ],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Timeout" in out and "time.sleep(60)" in out, out[-2000:]


def test_skips_are_counted_and_allowed_outside_ci(tmp_path: Path) -> None:
    out = run_sample(tmp_path)
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout
    assert "the frobnicator is not installed  (unexpected)" in out.stdout


def test_an_unexpected_skip_fails_the_run_in_ci(tmp_path: Path) -> None:
    for env in ({"CI": "true"}, {"ASSISTANT_NO_UNEXPECTED_SKIPS": "1"}):
        out = run_sample(tmp_path, **env)
        assert out.returncode == 1, (env, out.stdout)
        assert "1 failed, 1 passed" in out.stdout, out.stdout
        assert "unexpected skip in CI: the frobnicator is not installed" in out.stdout


def test_property_tests_are_derandomised_in_ci_and_print_their_blob() -> None:
    script = (
        "import tests.conftest\n"
        "from hypothesis import settings\n"
        "print(settings.default.derandomize, settings.default.print_blob)\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    for ci, derandomized in (({"CI": "true"}, "True"), ({}, "False")):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=PROJECT_ROOT,
            env={**environment, **ci},
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [derandomized, "True"]


def test_security_claims_name_tests_that_exist() -> None:
    text = (PROJECT_ROOT / "SECURITY.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(named) > 20
    for path, test in named:
        source = (PROJECT_ROOT / path).read_text(encoding="utf-8")
        assert not test or f"def {test}(" in source, f"SECURITY.md names {path}::{test}"
