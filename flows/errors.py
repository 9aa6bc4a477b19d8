"""The one exception root of the pipeline and its stage branches.

Every failure the pipeline raises on purpose is a `DeliveryError`, and its message says what was
seen and what to do. The branch names the stage, so a caller can tell "bad input" from "the
release was stopped" without knowing every leaf:

    DeliveryError
    ├── ConfigError      bad input: a config file, a parameter, a command-line option
    ├── SourceError      checkout and unit tests
    ├── ImageError       wheelhouse, build, smoke test, push, release bundle
    ├── TargetError      an operation of a target (local Docker host, Elastic Beanstalk)
    ├── ReleaseError     a release step: preprod, readiness, verification, analysis, swap back
    ├── TriggerError     the webhook receiver: payloads, run creation
    └── NotifyError      the chat notification
"""

from __future__ import annotations


class DeliveryError(RuntimeError):
    """Root of every deliberate failure of the pipeline; the message tells the user what to do."""


class ConfigError(DeliveryError):
    """Bad input: a configuration file, a flow parameter or a command-line option."""


class SourceError(DeliveryError):
    """The commit could not be checked out, or its tests failed."""


class ImageError(DeliveryError):
    """Building, smoke-testing, pushing or bundling the release image failed."""


class TargetError(DeliveryError):
    """A target operation failed; the message says what to check."""


class ReleaseError(DeliveryError):
    """A release step failed or stopped the release; the message says what was seen and where to look."""


class TriggerError(DeliveryError):
    """The webhook receiver could not accept a delivery or start its run."""


class NotifyError(DeliveryError):
    """The chat notification could not be delivered."""
