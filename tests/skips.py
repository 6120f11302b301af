"""A pytest plugin that keeps skips honest: every run ends with a count of the tests that
skipped and why, and in CI (CI=true, or ASSISTANT_NO_UNEXPECTED_SKIPS=1) a test that skips
for a reason not listed in EXPECTED_SKIPS fails instead, so a missing browser, model, Chroma
server or tool cannot make the suite pass while running less than it claims."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest

# Reasons (substrings) for which a test may skip even in CI. Nothing is here today: .ci/run
# installs Chromium, the language model and the Chroma command, and runs as root with setpriv.
EXPECTED_SKIPS: tuple[str, ...] = ()

_reasons: Counter[str] = Counter()


def enforced() -> bool:
    """Whether unexpected skips fail the run."""
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("ASSISTANT_NO_UNEXPECTED_SKIPS") == "1"
    )


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def expected(reason: str) -> bool:
    return any(allowed in reason for allowed in EXPECTED_SKIPS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    _reasons[reason] += 1
    if enforced() and not expected(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"unexpected skip in CI: {reason}\n"
            "Install what the test needs (see .ci/run), or, if the skip is right in CI, "
            "add its reason to EXPECTED_SKIPS in tests/skips.py."
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total = sum(_reasons.values())
    terminalreporter.write_sep("-", f"{total} skipped")
    for reason, count in sorted(_reasons.items()):
        kind = "expected" if expected(reason) else "unexpected"
        terminalreporter.write_line(f"{count:4d}  {reason}  ({kind})")
