"""Verifying an address: the version consistently, then every user path."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from flows.config import Deadlines, PipelineConfig
from flows.release.errors import ProdRejected, VerificationFailed
from flows.release.health import HealthCheck, HealthReport, PathAnswer
from flows.release.settings import UserPath, VerificationSettings
from flows.release.verify import AGREEING_INTERVAL_S, Verification, require, verify
from tests.flows.fakes import FakeClock


def answering(*versions: str | None, then: str | None = None) -> tuple[HealthCheck, list[str]]:
    """A check answering `versions` in turn, then `then` forever; also returns the URLs asked."""
    asked: list[str] = []
    queue: Iterator[str | None] = iter(versions)

    def check(url: str) -> HealthReport:
        asked.append(url)
        version = next(queue, then)
        if version is None:
            return HealthReport(url, 503, None, error="HTTP 503")
        return HealthReport(url, 200, version)

    return check, asked


def all_paths_ok(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
    return [PathAnswer(path, 200, 0.002) for path in paths]


def consistent(answers: int, verify_s: float = 60) -> PipelineConfig:
    return PipelineConfig(
        verification=VerificationSettings(consistent_answers=answers), deadlines=Deadlines(verify=verify_s)
    )


def test_verify_retries_until_the_version_appears_then_asks_for_consistent_answers() -> None:
    clock = FakeClock()
    check, asked = answering("v1", "v1", then="v2")
    result = verify("http://prod", "v2", consistent(3), clock, check, all_paths_ok)
    assert result.ok and result.seen == "v2"
    assert result.attempts == 2 + 1 + 3  # two old answers, the first new one, three agreeing
    assert len(asked) == result.attempts
    assert "4 consistent answers; every user path answered" in result.detail
    assert [answer.path.label() for answer in result.paths] == [
        "/ (text/html)",
        "/ (application/json)",
        "/health (application/json)",
    ]
    # before the new version answered: the poll interval (capped at 2 s); after: 0.2 s
    assert clock.time == pytest.approx(2 * 1.0 + 3 * AGREEING_INTERVAL_S)


def test_an_old_version_after_the_new_one_fails_the_verification_at_once() -> None:
    clock = FakeClock()
    check, asked = answering("v2", "v2", "v1", then="v2")
    result = verify("http://prod", "v2", consistent(5), clock, check, all_paths_ok)
    assert not result.ok and result.attempts == 3 and len(asked) == 3
    assert "after v2 answered, an answer showed v1" in result.detail
    assert "two versions, or a failing one, behind one address" in result.detail
    assert result.paths == ()  # the user paths are not asked once the answers disagree
    with pytest.raises(ProdRejected, match="prod does not serve v2 to users: after v2 answered"):
        require(result, "prod", ProdRejected)


def test_a_failing_answer_after_the_new_one_fails_the_verification() -> None:
    check, _ = answering("v2", None, then="v2")
    result = verify("http://prod", "v2", consistent(5), FakeClock(), check, all_paths_ok)
    assert not result.ok and "showed no version" in result.detail and "HTTP 503" in result.detail


def test_the_new_version_never_answering_fails_at_the_deadline_with_the_last_answer() -> None:
    clock = FakeClock()
    check, _ = answering(then="v1")
    result = verify("http://prod", "v2", consistent(2, verify_s=10), clock, check, all_paths_ok)
    assert not result.ok and result.seen == "v1"
    assert result.detail == "last answer: http://prod/health: HTTP 200, version v1"
    assert result.seconds >= 10 and clock.time >= 10


def test_too_few_agreeing_answers_in_time_fail_naming_how_many_agreed() -> None:
    clock = FakeClock()
    check, _ = answering("v1", then="v2")
    # the new version answers at 1 s; 0.2 s apart, only a few of the 50 more fit before 2 s
    result = verify("http://prod", "v2", consistent(50, verify_s=2), clock, check, all_paths_ok)
    assert not result.ok
    assert "of 50 answers agreed in time" in result.detail


def test_a_failing_user_path_fails_the_verification_and_is_named() -> None:
    check, _ = answering(then="v2")

    def html_page_broken(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        return [PathAnswer(path, 500 if path.accept == "text/html" else 200, 0.003) for path in paths]

    result = verify("http://preprod", "v2", consistent(2), FakeClock(), check, html_page_broken)
    assert not result.ok and result.seen == "v2"
    assert [answer.summary() for answer in result.failing_paths()] == ["/ (text/html): HTTP 500 in 3 ms"]
    assert "1 user path(s) failed" in result.detail
    assert "user paths: / (text/html): HTTP 500 in 3 ms" in result.summary()
    with pytest.raises(
        VerificationFailed, match=r"preprod does not serve v2 to users: user path / \(text/html\)"
    ):
        require(result, "preprod")


def test_a_path_without_an_answer_fails_the_verification() -> None:
    check, _ = answering(then="v2")

    def timing_out(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        return [PathAnswer(path, None, 5.0, error="timed out after 5s") for path in paths]

    result = verify("http://preprod", "v2", consistent(1), FakeClock(), check, timing_out)
    assert not result.ok and len(result.failing_paths()) == 3


def test_require_fails_unverified() -> None:
    bad = Verification("http://x", "v2", "v1", False, 3, 60.0, "saw v1")
    with pytest.raises(VerificationFailed, match="does not serve v2 to users: saw v1"):
        require(bad, "preprod")
    good = replace(bad, ok=True, seen="v2")
    assert require(good, "preprod") is good
