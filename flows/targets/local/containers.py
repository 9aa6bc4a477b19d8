"""Pure plans of the environments' containers: names, labels, the shared store, run specifications.

Nothing here touches Docker: `run_spec` decides everything a container is started with (image,
labels, mounts, health check, and its whole environment: `DELIVERY_CONF` alone, never the run's
own variables), and the engine executor (`engine`) carries it out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.targets.local.plans import LOOPBACK, PlanError

CONFIG_IN_CONTAINER = "/app/application.conf"
DATA_IN_CONTAINER = "/data"

LABEL_APP = "deliverypipeline.app"
LABEL_ENV = "deliverypipeline.env"
LABEL_VERSION = "deliverypipeline.version"
LABEL_STATE_DIR = "deliverypipeline.state_dir"
LABEL_TARGET = "deliverypipeline.target"  # short hash of the absolute state dir: one target
LABEL_RUN = "deliverypipeline.run"  # the flow run (or "cli") that started the container

NANOSECONDS = 1_000_000_000

_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]+")


def container_name(application: str, environment: str, version: str, taken: Sequence[str] = ()) -> str:
    """`<application>-<environment>-<version>`, made a valid Docker name, unique among `taken`."""
    base = _NAME_CHARS.sub("-", f"{application}-{environment}-{version}").strip("-.") or "env"
    name, serial = base, 1
    while name in taken:
        serial += 1
        name = f"{base}-r{serial}"
    return name


def store_config_text(data_dir: str = DATA_IN_CONTAINER) -> str:
    """The default shared store: one SQLite file on the volume both environments mount."""
    return f'[store]\nkind = "sqlite"\npath = "{data_dir}/delivery.sqlite3"\n'


def container_environment() -> dict[str, str]:
    """The whole environment an app container gets besides its image's own: the store's config.

    Least privilege: nothing of the process that starts it (its run id, the worker's
    credentials) reaches the container.
    """
    return {"DELIVERY_CONF": CONFIG_IN_CONTAINER}


@dataclass(frozen=True)
class Registration:
    """What `register_version` remembers of a rendered Dockerrun.aws.json."""

    image: str
    container_port: int


def registration_from_bundle(version: str, bundle: Mapping[str, Any]) -> Registration:
    """Read the image and container port from a Dockerrun.aws.json (version 1) document."""
    try:
        image = bundle["Image"]["Name"]
    except (KeyError, TypeError):
        raise PlanError(f"version {version}: Dockerrun.aws.json has no Image.Name") from None
    if not isinstance(image, str) or not image:
        raise PlanError(f"version {version}: Dockerrun.aws.json Image.Name is empty")
    ports = bundle.get("Ports") or [{"ContainerPort": "8080"}]
    try:
        port = int(ports[0]["ContainerPort"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise PlanError(
            f"version {version}: Dockerrun.aws.json Ports[0].ContainerPort is not a port"
        ) from None
    return Registration(image=image, container_port=port)


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to start one environment's container."""

    name: str
    image: str
    container_port: int
    labels: dict[str, str]
    environment: dict[str, str]
    volumes: dict[str, dict[str, str]]
    healthcheck: dict[str, Any]
    hostname: str

    def docker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the Docker SDK's `containers.create`/`run` (port chosen by Docker)."""
        return {
            "image": self.image,
            "name": self.name,
            "hostname": self.hostname,
            "labels": self.labels,
            "environment": self.environment,
            "volumes": self.volumes,
            "ports": {f"{self.container_port}/tcp": (LOOPBACK, None)},
            "healthcheck": self.healthcheck,
            "detach": True,
        }


def run_spec(
    *,
    application: str,
    environment: str,
    version: str,
    registration: Registration,
    name: str,
    store_config: Path,
    data_dir: Path,
    state_dir: Path,
    health_path: str,
    extra_labels: Mapping[str, str] | None = None,
) -> RunSpec:
    """The container of `version` in `environment`, sharing the store the seed's way.

    The store configuration is mounted read-only at /app/application.conf and named by
    DELIVERY_CONF; the data directory is mounted at /data for SQLite. Docker probes
    `health_path` every second (Docker 20.10 has no faster start interval).
    """
    labels = {
        LABEL_APP: application,
        LABEL_ENV: environment,
        LABEL_VERSION: version,
        LABEL_STATE_DIR: str(state_dir),
        **(extra_labels or {}),
    }
    probe = f"http://127.0.0.1:{registration.container_port}{health_path}"
    return RunSpec(
        name=name,
        image=registration.image,
        container_port=registration.container_port,
        labels=labels,
        environment=container_environment(),
        volumes={
            str(store_config): {"bind": CONFIG_IN_CONTAINER, "mode": "ro"},
            str(data_dir): {"bind": DATA_IN_CONTAINER, "mode": "rw"},
        },
        healthcheck={
            "test": ["CMD", "curl", "-fsS", "-o", "/dev/null", "--max-time", "2", probe],
            "interval": 1 * NANOSECONDS,
            "timeout": 3 * NANOSECONDS,
            "retries": 3,
            "start_period": 60 * NANOSECONDS,
        },
        hostname=name[:63],
    )
