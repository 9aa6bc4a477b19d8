"""Reading pytest's JUnit XML report into the unit-test step's summary (pure, no I/O but parsing).

The summary becomes a Prefect artifact, so a failed run shows which tests failed and why
without opening the log.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from flows.errors import SourceError

MESSAGE_MAX = 400


class JunitError(SourceError):
    """The report is missing or not JUnit XML."""


@dataclass(frozen=True)
class TestFailure:
    """One failed or erroring test: its id and the first lines of why."""

    __test__ = False  # not a pytest test class

    test: str
    kind: str  # failure | error
    message: str


@dataclass(frozen=True)
class TestSummary:
    """Counts of one test run and its failures."""

    __test__ = False

    tests: int
    failed: int
    errors: int
    skipped: int
    seconds: float
    failures: tuple[TestFailure, ...] = ()

    @property
    def passed(self) -> int:
        """Tests that neither failed, erred nor were skipped."""
        return self.tests - self.failed - self.errors - self.skipped

    @property
    def ok(self) -> bool:
        """Whether the run had no failures or errors."""
        return self.failed == 0 and self.errors == 0

    def line(self) -> str:
        """One line for logs and the run report."""
        return (
            f"{self.passed} passed, {self.failed} failed, {self.errors} errors, "
            f"{self.skipped} skipped in {self.seconds:.1f}s"
        )


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def parse_junit(xml_text: str) -> TestSummary:
    """The summary of a pytest `--junitxml` report (one or several test suites)."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise JunitError(f"the test report is not valid XML: {exc}") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if root.tag not in ("testsuite", "testsuites"):
        raise JunitError(f"the test report's root is <{root.tag}>, not <testsuites>/<testsuite>")
    tests = failed = errors = skipped = 0
    seconds = 0.0
    failures: list[TestFailure] = []
    for suite in suites:
        for case in suite.iter("testcase"):
            tests += 1
            name = "::".join(part for part in (case.get("classname", ""), case.get("name", "")) if part)
            for kind in ("failure", "error"):
                node = case.find(kind)
                if node is not None:
                    text = node.get("message") or (node.text or "")
                    failures.append(TestFailure(name, kind, _short(text)))
                    if kind == "failure":
                        failed += 1
                    else:
                        errors += 1
                    break
            else:
                if case.find("skipped") is not None:
                    skipped += 1
        seconds += float(suite.get("time", "0") or 0)
    return TestSummary(tests, failed, errors, skipped, round(seconds, 3), tuple(failures))
