"""The `wait until ready` progress artifact: how much of the deadline the wait used, and how it ended.

While the wait runs, the artifact's bar is the share of the deadline used and its description
says what it waits for; when the wait ends, the description says how it ended (ready, or why
it stopped), so the UI never shows a finished step still "waiting for" anything. Prefect's
artifact calls are injected, so the texts and the calls are tested without a server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from flows.markdown import shorten

KEY = "wait-until-ready"
DESCRIPTION_CHARS = 300

Create = Callable[..., Any]  # prefect.artifacts.create_progress_artifact
Update = Callable[..., Any]  # prefect.artifacts.update_progress_artifact


def waiting(environment: str, version: str) -> str:
    """The description while waiting."""
    return f"waiting for {environment} to be ready with {version}"


def ready(environment: str, version: str, seconds: float) -> str:
    """The description once the environment is ready."""
    return f"done: {environment} is ready with {version} (after {seconds:.0f} s)"


def stopped(environment: str, version: str, error: BaseException) -> str:
    """The description when the wait ended without the environment ready: the error, cut at a word."""
    named = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    why = shorten(named, DESCRIPTION_CHARS)
    return f"stopped: {environment} not ready with {version}: {why}"


class ReadyProgress:
    """The progress artifact of one wait; `update(fraction)` as the wait goes, then `ready` or `stopped`."""

    def __init__(self, environment: str, version: str, create: Create, update: Update) -> None:
        """The artifact is created on the first update, so a wait that never ran leaves none."""
        self.environment, self.version = environment, version
        self._create, self._update = create, update
        self._id: UUID | None = None
        self.percent = -1.0

    def update(self, fraction: float) -> None:
        """The share of the deadline used, 0.0 .. 1.0; unchanged percents are not sent again."""
        percent = round(min(max(fraction, 0.0), 1.0) * 100, 1)
        if percent != self.percent:
            self._set(percent, waiting(self.environment, self.version))

    def ready(self, seconds: float) -> None:
        """The wait ended with the environment ready: 100 % and the final state."""
        self._set(100.0, ready(self.environment, self.version, seconds))

    def stopped(self, error: BaseException) -> None:
        """The wait ended without it: the bar stays where it was, the description says why."""
        self._set(max(self.percent, 0.0), stopped(self.environment, self.version, error))

    def _set(self, percent: float, description: str) -> None:
        self.percent = percent
        if self._id is None:
            created = self._create(percent, key=KEY, description=description)
            self._id = created if isinstance(created, UUID) else None
        else:
            self._update(self._id, percent, description=description)
