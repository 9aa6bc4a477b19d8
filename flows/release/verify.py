"""Verifying an address: it serves the expected version consistently, and every user path answers.

The result type (`Verification`) goes into the run report; `require` turns a failed one into the
step's error.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.config import PipelineConfig
from flows.errors import ReleaseError
from flows.release.decisions import Agreement, Consistency
from flows.release.errors import VerificationFailed
from flows.release.health import HealthCheck, PathAnswer, PathCheck, fetch_health, fetch_paths

AGREEING_INTERVAL_S = 0.05  # between the consistent answers (each over a new connection)


@dataclass(frozen=True)
class Verification:
    """The result of checking that an address serves a version, consistently, on every user path."""

    url: str
    expected: str
    seen: str | None
    ok: bool
    attempts: int
    seconds: float
    detail: str
    paths: tuple[PathAnswer, ...] = ()

    def failing_paths(self) -> list[PathAnswer]:
        """The user paths that failed (5xx, no answer, timeout)."""
        return [answer for answer in self.paths if not answer.ok]

    def summary(self) -> str:
        """One line for logs and the run report."""
        verdict = "ok" if self.ok else "FAILED"
        paths = "; ".join(answer.summary() for answer in self.paths)
        return (
            f"{self.url}: {verdict}, expected {self.expected}, saw {self.seen or '-'} "
            f"after {self.attempts} answer(s) in {self.seconds:.1f}s ({self.detail})"
            + (f"; user paths: {paths}" if paths else "")
        )


def verify(
    url: str, version: str, config: PipelineConfig,
    clock: Clock = SYSTEM_CLOCK, check: HealthCheck = fetch_health, paths_check: PathCheck = fetch_paths,
) -> Verification:  # fmt: skip
    """Check that `url` serves `version` consistently and that every user path answers.

    Retries until the new version first answers (a CNAME swap reaches DNS caches gradually),
    then asks for `verification.consistent_answers` more answers over new connections, which
    must all show it; then requests each user path once (any 5xx, no answer or timeout fails).
    """
    tally = Consistency(version, config.verification.consistent_answers)
    attempts = [0]
    last: list[str] = ["no answer yet"]
    seen: list[str | None] = [None]

    def look(_: Deadline) -> Agreement | None:
        attempts[0] += 1
        report = check(url)
        last[0], seen[0] = report.summary(), report.version
        agreement = tally.add(report.version, report.ok, report.summary())
        return None if agreement is Agreement.PENDING else agreement

    def interval() -> float:
        return AGREEING_INTERVAL_S if tally.first_seen else min(config.deadlines.poll_s, 2.0)

    started = clock.now()
    agreed = poll_until(look, config.deadlines.verify, interval, clock=clock)
    agreement = Agreement.PENDING if isinstance(agreed, GaveUp) else agreed  # answers did not agree in time
    seconds = clock.now() - started
    if agreement is not Agreement.PASSED:
        detail = tally.reason if agreement is Agreement.FAILED else f"last answer: {last[0]}"
        if agreement is Agreement.PENDING and tally.first_seen:
            detail = f"only {tally.agreed} of {tally.required} answers agreed in time; {detail}"
        return Verification(url, version, seen[0], False, attempts[0], seconds, detail)
    answers = tuple(paths_check(url, config.verification.user_paths))
    failing = [answer for answer in answers if not answer.ok]
    detail = f"{tally.agreed + 1} consistent answers; " + (
        f"{len(failing)} user path(s) failed" if failing else "every user path answered"
    )
    return Verification(url, version, version, not failing, attempts[0], seconds, detail, answers)


def require(
    verification: Verification, what: str, error: type[ReleaseError] = VerificationFailed
) -> Verification:
    """Fail the step unless the verification passed, naming the failing path or answer."""
    if not verification.ok:
        failing = verification.failing_paths()
        named = f"user path {failing[0].summary()}" if failing else verification.detail
        raise error(
            f"{what} does not serve {verification.expected} to users: {named}; {verification.summary()}"
        )
    return verification
