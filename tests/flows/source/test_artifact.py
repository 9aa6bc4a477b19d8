"""The unit-test step's artifact: counts and the failing tests."""

from __future__ import annotations

from flows.source.artifact import render_unit_tests
from flows.source.junit import TestFailure, TestSummary


def test_unit_tests_artifact_lists_failures() -> None:
    summary = TestSummary(
        5, 1, 0, 1, 1.25, (TestFailure("tests.test_x::test_y", "failure", "assert 1 == 2"),)
    )
    text = render_unit_tests(summary, "v1.0")
    assert "# Unit tests FAILED: v1.0" in text
    assert "| 5 | 3 | 1 | 0 | 1 | 1.2 |" in text
    assert "`tests.test_x::test_y` | failure | assert 1 == 2" in text
