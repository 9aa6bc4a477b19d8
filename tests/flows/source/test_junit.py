"""Parsing pytest's JUnit XML into the unit-test step's summary."""

from __future__ import annotations

import pytest

from flows.source.junit import JunitError, parse_junit

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="1.5">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_ok2" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1">
  <failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_b" name="test_err" time="0.1">
  <error message="fixture blew up">trace</error></testcase>
<testcase classname="tests.test_b" name="test_skip" time="0.0"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_counts_and_failures() -> None:
    summary = parse_junit(REPORT)
    assert (summary.tests, summary.passed, summary.failed, summary.errors, summary.skipped) == (5, 2, 1, 1, 1)
    assert summary.seconds == 1.5
    assert not summary.ok
    assert [(f.test, f.kind, f.message) for f in summary.failures] == [
        ("tests.test_a::test_bad", "failure", "assert 1 == 2"),
        ("tests.test_b::test_err", "error", "fixture blew up"),
    ]
    assert summary.line() == "2 passed, 1 failed, 1 errors, 1 skipped in 1.5s"


def test_single_suite_root_and_all_passing() -> None:
    summary = parse_junit('<testsuite time="0.2"><testcase classname="c" name="n"/></testsuite>')
    assert summary.ok and summary.passed == 1


def test_failure_text_used_when_no_message_and_shortened() -> None:
    xml = f'<testsuite><testcase name="t"><failure>{"x " * 500}</failure></testcase></testsuite>'
    message = parse_junit(xml).failures[0].message
    assert len(message) == 400 and message.endswith("…")


@pytest.mark.parametrize("text", ["not xml", "<html/>"])
def test_bad_reports_raise(text: str) -> None:
    with pytest.raises(JunitError):
        parse_junit(text)
