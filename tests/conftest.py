"""Suite-wide fixtures: Docker-marked tests fail loudly when the engine is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A Docker SDK client to a running engine; a missing engine is a failure, never a skip."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the SDK raises several types for "no engine"
        pytest.fail(
            f"Docker engine not reachable ({exc}); run `bash scripts/setup-host.sh` "
            "(make test does) to install and start it",
            pytrace=False,
        )
    yield client
    client.close()
