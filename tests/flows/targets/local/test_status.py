"""Container facts in Elastic Beanstalk's status and health vocabulary."""

from __future__ import annotations

import pytest

from flows.targets.base import GREEN, GREY, LAUNCHING, MISSING, READY, RED, UPDATING, Environment
from flows.targets.local.status import ContainerFacts, environment_report


def _facts(state: str = "running", health: str | None = "healthy") -> ContainerFacts:
    return ContainerFacts(
        name="app-node-1-v1",
        id="0123456789abcdef",
        state=state,
        health=health,
        version="v1",
        image="127.0.0.1:5000/app:v1",
        port=32768,
        environment="node-1",
    )


@pytest.mark.parametrize(
    ("state", "health", "status", "eb_health"),
    [
        ("running", "healthy", READY, GREEN),
        ("running", "starting", LAUNCHING, GREY),
        ("running", "unhealthy", READY, RED),
        ("running", None, READY, GREY),  # an image without a healthcheck
        ("exited", "healthy", READY, RED),  # stopped since its last probe
    ],
)
def test_docker_health_in_eb_terms(state: str, health: str | None, status: str, eb_health: str) -> None:
    report = environment_report("node-1", "127.0.0.1:8080", _facts(state, health), None)
    assert (report.status, report.health, report.version) == (status, eb_health, "v1")


def test_details_name_the_container() -> None:
    report = environment_report("node-1", "127.0.0.1:8080", _facts(), None)
    assert report.details == {
        "container": "app-node-1-v1",
        "id": "0123456789ab",
        "image": "127.0.0.1:5000/app:v1",
        "port": 32768,
    }


def test_no_container_is_missing() -> None:
    assert environment_report("node-2", "127.0.0.1:8081", None, None) == Environment(
        "node-2", "127.0.0.1:8081", None, MISSING, GREY
    )


def test_an_environment_being_deployed_is_updating() -> None:
    first = environment_report("node-2", "127.0.0.1:8081", None, "v2")
    assert (first.status, first.health, first.version) == (UPDATING, GREY, None)
    again = environment_report("node-1", "127.0.0.1:8081", _facts(), "v2")
    assert (again.status, again.health, again.version) == (UPDATING, GREEN, "v1")
    assert again.details["updating_to"] == "v2"
