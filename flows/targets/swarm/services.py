"""Pure plans of the swarm target's services: the Engine API `ServiceSpec` of each environment.

An environment is one Swarm service, `<application>-<environment>`, in global mode (one task on
every node) on the host network (the ingress routing mesh is not used), listening on its own
port. The image is pinned by digest so every node runs the same bits; `UpdateConfig` updates
every node at once (preprod serves no user; stop-first: the port is the node's), watches the
new tasks for a while and rolls back on failure; the store
configuration is a Swarm config mounted at /app/application.conf and named by DELIVERY_CONF.
The labels say this target made the service: a service of that name without them is never
taken over. Nothing here talks to an engine: the executor posts these specs as they are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from flows.errors import TargetError

LABEL_APP = "deliverypipeline.app"
LABEL_ENV = "deliverypipeline.env"
LABEL_VERSION = "deliverypipeline.version"
LABEL_OWNER = "deliverypipeline.owner"  # which target made it: "swarm"
OWNER = "swarm"
CONFIG_IN_TASK = "/app/application.conf"
DATA_IN_TASK = "/app/data"  # the image makes it, owned by its user: a new volume copies that
SECOND = 1_000_000_000  # the Engine API counts durations in nanoseconds


class ServicePlanError(TargetError):
    """A service cannot be planned from the given facts; the message says which fact is wrong."""


@dataclass(frozen=True)
class StoreConfig:
    """A Swarm config holding the store configuration (its name carries a hash of the text)."""

    name: str
    text: str


def service_name(application: str, environment: str) -> str:
    """`<application>-<environment>`, e.g. `deliverypipeline-node-1` (the seed's names)."""
    return f"{application}-{environment}"


def store_config(application: str, text: str) -> StoreConfig:
    """The store config object for `text`: configs are immutable, so a new text is a new name."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return StoreConfig(name=f"{application}-store-{digest}", text=text)


def default_store_text() -> str:
    """The store when none is configured: SQLite on each node's `<application>-data` volume."""
    return f'[store]\nkind = "sqlite"\npath = "{DATA_IN_TASK}/delivery.sqlite3"\n'


_DIGEST_REF = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def pinned(registry: str, repository: str, digest: str) -> str:
    """`<registry>/<repository>@<digest>`: the reference every node pulls."""
    reference = f"{registry}/{repository}@{digest}" if registry else f"{repository}@{digest}"
    if not _DIGEST_REF.match(reference):
        raise ServicePlanError(f"{reference!r} is not an image pinned by a sha256 digest")
    return reference


def owned(labels: dict[str, str] | None, application: str, environment: str) -> bool:
    """Whether a service's labels say this target made it for this application and environment."""
    labels = labels or {}
    return (
        labels.get(LABEL_OWNER) == OWNER
        and labels.get(LABEL_APP) == application
        and labels.get(LABEL_ENV) == environment
    )


def service_spec(
    *,
    application: str,
    environment: str,
    version: str,
    image: str,
    port: int,
    health_path: str,
    store: StoreConfig,
    store_config_id: str,
) -> dict[str, Any]:
    """The Engine API ServiceSpec of `environment` running `version` (`image` pinned by digest)."""
    if "@sha256:" not in image:
        raise ServicePlanError(f"{image!r} is not pinned by digest; every node must run the same bits")
    labels = {LABEL_APP: application, LABEL_ENV: environment, LABEL_VERSION: version, LABEL_OWNER: OWNER}
    probe = f"http://127.0.0.1:{port}{health_path}"
    return {
        "Name": service_name(application, environment),
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Labels": labels,
                "Env": [f"PORT={port}", "HOST=0.0.0.0", f"DELIVERY_CONF={CONFIG_IN_TASK}"],
                "Healthcheck": {
                    "Test": ["CMD", "curl", "-fsS", "-o", "/dev/null", "--max-time", "2", probe],
                    "Interval": 1 * SECOND,
                    "Timeout": 3 * SECOND,
                    "Retries": 5,  # a node busy for a few seconds is not a dead task
                    "StartPeriod": 60 * SECOND,
                },
                "Configs": [
                    {
                        "File": {"Name": CONFIG_IN_TASK, "UID": "0", "GID": "0", "Mode": 0o444},
                        "ConfigID": store_config_id,
                        "ConfigName": store.name,
                    }
                ],
                "Mounts": [{"Type": "volume", "Source": f"{application}-data", "Target": DATA_IN_TASK}],
                "StopGracePeriod": 10 * SECOND,
            },
            "Networks": [{"Target": "host"}],
            "RestartPolicy": {"Condition": "any", "Delay": 1 * SECOND},
        },
        "Mode": {"Global": {}},
        "UpdateConfig": {
            "Parallelism": 0,  # every node at once: preprod serves no user, prod moves at the edge
            "Delay": 0,
            "FailureAction": "rollback",
            # A task is `running` only once its health check passed, and readiness asks every node
            # for the version: a short watch is enough, and the update (so the release) ends sooner.
            "Monitor": SECOND // 4,
            "MaxFailureRatio": 0,
            "Order": "stop-first",
        },
        "RollbackConfig": {
            "Parallelism": 0,
            "FailureAction": "pause",
            "Monitor": 5 * SECOND,
            "Order": "stop-first",
        },
    }
