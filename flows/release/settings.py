"""What a release checks and how it judges it: user paths, consistent answers, traffic analysis, canary.

The `verification`, `analysis` and `traffic_steps` sections of the pipeline's configuration. Every
value is validated when the configuration is read, so a bad threshold or step list stops the
run with a clear error before anything is built.
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel, Field, field_validator


class UserPath(BaseModel):
    """A request a user makes: the path and the media type asked for."""

    path: str = "/"
    accept: str = "text/html"

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"a user path starts with '/': {value!r}")
        return value

    def label(self) -> str:
        """`/ (text/html)`: how reports name the path."""
        return f"{self.path} ({self.accept})"


def default_user_paths() -> list[UserPath]:
    """The page as a browser and as a JSON client ask for it, and the health check."""
    return [
        UserPath(path="/", accept="text/html"),
        UserPath(path="/", accept="application/json"),
        UserPath(path="/health", accept="application/json"),
    ]


class VerificationSettings(BaseModel):
    """How preprod and prod are verified through their addresses."""

    user_paths: list[UserPath] = Field(default_factory=default_user_paths, min_length=1)
    # Once the new version answers, this many more answers over new connections must agree.
    consistent_answers: int = Field(default=5, ge=1, le=1000)


class AnalysisSettings(BaseModel):
    """The judgement of real traffic on the new prod after the swap (and at each canary step).

    `window` None: the target's default (local 10 s, aws 300 s; see `flows.config.TARGET_DEFAULTS`).
    """

    window: float | None = Field(default=None, gt=0)  # seconds of traffic judged per step
    max_server_error_percent: float = Field(default=1.0, ge=0, le=100)  # 5xx share allowed
    min_requests: int = Field(default=20, ge=1)  # below this a window is inconclusive
    max_connection_errors: int = Field(default=0, ge=0)  # requests without an answer allowed
    max_latency_ratio: float = Field(default=2.0, gt=0)  # against the previous prod, before the swap
    latency_floor_ms: float = Field(default=50.0, ge=0)  # latencies below this are never a failure

    @property
    def window_s(self) -> float:
        """The window in seconds (the local default until `for_target` resolved it)."""
        return self.window if self.window is not None else 10.0


def validate_traffic_steps(steps: list[int]) -> list[int]:
    """Canary shares in percent: each 1..100, strictly increasing; an empty list means no canary."""
    for share in steps:
        if not 0 < share <= 100:
            raise ValueError(f"traffic step {share} is not a share of 1..100 percent")
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise ValueError(f"traffic steps must increase: {steps}")
    return steps
