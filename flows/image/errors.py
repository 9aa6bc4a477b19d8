"""Exception types of the build operations, one per way a build step can fail.

The pipeline's retry policy keys on these: only `RegistryUnreachable` is transient.
"""

from __future__ import annotations

from flows.errors import ImageError

BuildStepError = ImageError  # the stage's branch of the exception tree


class WheelhouseError(BuildStepError):
    """The wheelhouse for the image's Python dependencies could not be built."""


class ImageBuildError(BuildStepError):
    """The Docker engine reported a failed image build."""


class SmokeTestFailed(BuildStepError):
    """The built image did not start, did not get healthy, or served the wrong version."""


class PushError(BuildStepError):
    """The registry or the engine refused a push."""


class RegistryUnreachable(PushError):
    """The registry could not be reached (refused, timed out): worth retrying."""


class BundleError(BuildStepError):
    """A Dockerrun.aws.json template or rendered bundle is not valid."""
