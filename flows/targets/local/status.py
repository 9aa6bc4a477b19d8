"""Pure translation of container facts into Elastic Beanstalk's status and health vocabulary.

Docker health `healthy` is Green, `starting` Grey, `unhealthy` Red; an environment without a
container is Missing/Grey; one being deployed is Updating.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.targets.base import GREEN, GREY, LAUNCHING, MISSING, READY, RED, UPDATING, Environment


@dataclass(frozen=True)
class ContainerFacts:
    """What Docker says about one container."""

    name: str
    id: str
    state: str  # Docker's: created | running | restarting | exited | dead | ...
    health: str | None  # healthy | starting | unhealthy, None without a healthcheck
    version: str | None
    image: str
    port: int | None  # the published 127.0.0.1 port
    environment: str | None = None  # its deliverypipeline.env label


DOCKER_HEALTH = {"healthy": GREEN, "starting": GREY, "unhealthy": RED}


def health_of(facts: ContainerFacts) -> str:
    """EB health of a container: from its Docker health while running, Red once it stopped."""
    if facts.state != "running":
        return RED
    if facts.health is None:
        return GREY
    return DOCKER_HEALTH.get(facts.health, GREY)


def environment_report(
    name: str, address: str, facts: ContainerFacts | None, updating_to: str | None
) -> Environment:
    """One environment as the pipeline sees it.

    `facts` is the container serving it (None: nothing deployed, or its container vanished);
    `updating_to` the version a live deploy is installing, if any.
    """
    details: dict[str, object] = {}
    if facts is not None:
        details = {"container": facts.name, "id": facts.id[:12], "image": facts.image, "port": facts.port}
    if updating_to is not None:
        details["updating_to"] = updating_to
    if facts is None:
        status = UPDATING if updating_to is not None else MISSING
        return Environment(name, address, None, status, GREY, details)
    health = health_of(facts)
    if updating_to is not None:
        status = UPDATING
    elif facts.state == "running" and facts.health == "starting":
        status = LAUNCHING
    else:
        status = READY
    return Environment(name, address, facts.version, status, health, details)
