"""The release stage's errors: one type per way a release stops, each message saying what to do.

All are `ReleaseError`s (see `flows.errors`); `ProdRejected` and its `AnalysisFailed` mean the new
prod failed its checks after the swap (or at a canary step), which the flow answers with a swap back.
"""

from __future__ import annotations

from flows.errors import ReleaseError
from flows.release.analysis import Verdict


class DecisionError(ReleaseError):
    """The environments are not in a shape the release can proceed from."""


class PreflightFailed(ReleaseError):
    """The target is not ready for a release (missing environment, bucket, address held...)."""


class UnknownEnvironment(ReleaseError):
    """The target reports no environment of the name asked for."""


class PreprodBusy(ReleaseError):
    """Preprod stayed busy with another operation past the deadline."""


class DeploymentFailed(ReleaseError):
    """The deployment settled in a bad state (an ERROR event, or health outside the accepted set)."""


class NotReadyInTime(ReleaseError):
    """The deployment did not become ready before its deadline."""


class VerificationFailed(ReleaseError):
    """An address did not serve the expected version consistently, or a user path failed."""


class ProdRejected(ReleaseError):
    """After the swap (or at a canary step), prod did not serve users well: swap back."""


class AnalysisFailed(ProdRejected):
    """The real traffic of a window failed the analysis; `verdict` has the figures."""

    def __init__(self, message: str, verdict: Verdict, share: int = 100) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.share = share  # percent of prod traffic the failing window judged


class ReleaseRejected(ReleaseError):
    """The release was not approved; preprod runs the new version, prod was not touched."""


class CanaryUnsupported(ReleaseError):
    """`traffic_steps` were configured for a target that cannot split prod traffic."""


class SwapStuck(ReleaseError):
    """Around a swap, the environments did not reach the state it waits for within `deadlines.swap`."""


class StoppedBeforeSwap(ReleaseError):
    """The release was rejected or stopped before its swap took effect: prod is unchanged."""


class SwappedBack(ReleaseError):
    """The new prod was rejected after the swap; the addresses were swapped back."""


class SwapBackFailed(ReleaseError):
    """The new prod was rejected and swapping back failed too: a person must act."""


class NothingToRollBack(ReleaseError):
    """A manual swap was refused: preprod runs nothing, so prod would answer nothing."""


class ZeroDowntimeViolation(ReleaseError):
    """Requests to prod failed while the release deployed or swapped."""
