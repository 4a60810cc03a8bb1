"""Which skips a CI run may contain, and a ledger of the oracles a run consulted.

A skip is how a test says "I could not check this here". On a laptop clone without the corpus,
root or tcpdump that is honest; in CI it would turn a missing oracle into a green run that proved
nothing. So when ``CI`` is set (``.ci/run`` runs with ``CI=true``), every skip must match an entry
of :data:`ALLOWED_SKIPS` — each one a skip that is right on *every* machine, with the reason
written beside it — and any other skip fails the run (see ``tests/conftest.py``).

The ledger counts, per oracle, the tests that passed after consulting it (a tshark or tcpdump
process, a corpus ``*.expected.json``, a real Chromium), and the terminal summary prints it, so a
reader of the CI log sees how much was actually compared, not only how many tests ran.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class AllowedSkip:
    """A skip that is legitimate on every machine: node ids matching ``node`` (fnmatch) whose
    skip reason matches ``reason`` (a regex, searched)."""

    node: str
    reason: str
    why: str

    def matches(self, nodeid: str, message: str) -> bool:
        return (
            fnmatch.fnmatchcase(nodeid, self.node) and re.search(self.reason, message) is not None
        )


# The corpus holds a few files that are damaged on purpose; they are exercised by the reader
# tests (tests/sources, tests/test_corpus.py), which pin the exact error. Tests that need a
# *readable* capture skip them by name.
_REJECTED = "libpcap-pcap-invalid-version-1.pcap"

ALLOWED_SKIPS: tuple[AllowedSkip, ...] = (
    AllowedSkip(
        f"*{_REJECTED}*",
        r"rejects this file|not readable|readers reject|unreadable|reader accepts",
        "pcap version 1.4: our reader, tcpdump and tshark all refuse it; the refusal itself "
        "is pinned by tests/test_corpus.py",
    ),
    AllowedSkip(
        "tests/bpf/*",
        r"tcpdump cannot read",
        "the oracle itself refuses the file (archaic format, a truncated record header, "
        "pcapng with two link types): there is nothing to compare against",
    ),
)


def allowed(nodeid: str, message: str) -> AllowedSkip | None:
    """The allow-list entry covering this skip, if any."""
    for entry in ALLOWED_SKIPS:
        if entry.matches(nodeid, message):
            return entry
    return None


def strict() -> bool:
    """Whether unlisted skips fail the run: in CI (``CI`` set and not false/0)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------
# The oracle ledger
# --------------------------------------------------------------------------------------

ORACLE_TOOLS = {
    "tshark": "tshark",
    "tcpdump": "tcpdump",
    "editcap": "tshark",
    "capinfos": "tshark",
    "chromium": "chromium",
    "nfcapd": "nfdump",
    "nfdump": "nfdump",
}


class OracleLedger:
    """Which oracles the running test consulted, and totals over passed tests."""

    def __init__(self) -> None:
        self.current: set[str] = set()
        self.spoiled = False
        self.passed: Counter[str] = Counter()
        self.tests_with_oracle = 0

    def note(self, oracle: str) -> None:
        self.current.add(oracle)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """``sys.addaudithook`` callback: a subprocess of an oracle tool counts."""
        if event != "subprocess.Popen" or not args:
            return
        argv = args[1] if len(args) > 1 else None
        program = args[0]
        if program is None and isinstance(argv, (list, tuple)) and argv:
            program = argv[0]
        if program is None:
            return
        name = os.path.basename(
            os.fsdecode(program) if isinstance(program, bytes) else str(program)
        )
        oracle = ORACLE_TOOLS.get(name)
        if oracle is not None:
            self.current.add(oracle)

    def spoil(self) -> None:
        """The running test failed or skipped: what it consulted proves nothing."""
        self.spoiled = True

    def finish_test(self) -> None:
        if not self.spoiled and self.current:
            self.tests_with_oracle += 1
            self.passed.update(self.current)
        self.current = set()
        self.spoiled = False

    def summary(self) -> str:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(self.passed.items()))
        n = self.tests_with_oracle
        return f"oracle comparisons: {n} passed tests consulted an oracle ({parts or 'none'})"


LEDGER = OracleLedger()
sys.addaudithook(LEDGER.audit)


# --------------------------------------------------------------------------------------
# pytest hooks (registered by tests/conftest.py; a plugin on their own: ``-p skip_policy``)
# --------------------------------------------------------------------------------------

_unlisted_skips: list[tuple[str, str]] = []


def _skip_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect skips that no allow-list entry covers; close the test's oracle ledger."""
    if report.skipped and not hasattr(report, "wasxfail"):
        message = _skip_message(report)
        if allowed(report.nodeid, message) is None:
            _unlisted_skips.append((report.nodeid, message))
    if report.failed or report.skipped:
        LEDGER.spoil()  # this test does not count, whatever it consulted
    if report.when == "teardown":
        LEDGER.finish_test()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "browser" in getattr(item, "fixturenames", ()):
        LEDGER.note("chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``timing`` get one retry (pytest-rerunfailures): a CI hiccup cannot fail
    them, a real regression fails twice. Their bounds are generous on purpose."""
    for item in items:
        if (
            item.get_closest_marker("timing") is not None
            and item.get_closest_marker("flaky") is None
        ):
            item.add_marker(pytest.mark.flaky(reruns=1))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, a skip that is not on the allow-list fails the run (a missing oracle is not green)."""
    if strict() and _unlisted_skips and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(LEDGER.summary())
    if not _unlisted_skips:
        return
    verdict = "FAIL (CI)" if strict() else "allowed outside CI"
    terminalreporter.write_sep(
        "=", f"{len(_unlisted_skips)} skips not on the allow-list: {verdict}"
    )
    for nodeid, message in _unlisted_skips[:200]:
        terminalreporter.write_line(f"{nodeid}: {message}")
    terminalreporter.write_line(
        "allow-list: tests/skip_policy.py (each entry says why it is right)"
    )
