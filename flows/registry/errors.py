"""What the registry client raises: a refusal, or no answer at all (the one worth retrying)."""

from __future__ import annotations

from flows.errors import DeliveryError


class RegistryError(DeliveryError):
    """The registry answered with a refusal (credentials, missing manifest, deletes disabled)."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer (refused connection, timeout): worth retrying."""
