"""Suite-wide fixtures and hooks: Docker-marked tests fail loudly when the engine is missing.

Tests that use the session's Prefect server (`prefect_harness`) are marked `server`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

# How long the session's temporary Prefect server may take to start (each xdist worker starts one).
HARNESS_STARTUP_S = 180


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `server` every test that uses the session's Prefect server, directly or through a fixture."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Exempt what collection loaded (Prefect, boto3, pydantic models...) from the cyclic GC.

    Those ~200k objects live for the whole session, yet every full collection walked them again
    (~0.1 s each, over a second per run). Objects the tests create are still collected, so
    pytest's end-of-session check for unraisable exceptions still sees the tests' garbage.
    """
    gc.freeze()


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


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server for the whole session (it costs ~10 s to start).

    Results go to a temp dir; the flow heartbeat is off (it costs ~1 s per flow call).
    Imported lazily so the fast suite does not pay for Prefect's testing utilities. The server
    gets `HARNESS_STARTUP_S` to answer: its default 30 s runs out on a busy 2-core machine.
    """
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with (
        prefect_test_harness(server_startup_timeout=HARNESS_STARTUP_S),
        temporary_settings(
            updates={"results.local_storage_path": results, "flows.heartbeat_frequency": None}
        ),
    ):
        yield
