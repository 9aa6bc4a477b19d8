"""Settings of the Docker Swarm target (the `swarm` section of the pipeline's configuration).

The defaults describe the local lab `deliverypipeline swarm up` creates: node engines in network
namespaces on a bridge `10.231.0.0/24`, the manager's socket under `/run/deliverypipeline/swarm`,
the registry served to the nodes on the bridge's address. Against a real cluster, `manager` names
a manager's Docker endpoint (`ssh://` or `tcp://`) and `registry` the address its nodes pull from.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from flows.targets.renewal import LeaseSettings
from flows.targets.swarm.waves import Wave, validate_waves

LAB_RUN_DIR = Path("/run/deliverypipeline/swarm")
LAB_STATE_DIR = Path("/var/lib/deliverypipeline/swarm")
LAB_SUBNET = "10.231.0"  # a /24 of our own: the bridge is .1, node N is .(10+N)
STORE_CONFIG = "store.conf"  # in state_dir: the lab's store (its PostgreSQL), the tasks' default


class SwarmSettings(LeaseSettings):
    """The Docker Swarm target: two global host-networked services behind a HAProxy edge."""

    section: ClassVar[str] = "swarm"

    manager: str = f"unix://{LAB_RUN_DIR}/node-1/docker.sock"  # a manager's Docker endpoint
    registry: str = f"{LAB_SUBNET}.1:5000"  # where the nodes pull the pushed image from
    nodes: int = Field(default=3, ge=1, le=9)  # how many nodes `swarm up` creates
    ports: tuple[int, int] = (9081, 9082)  # each environment's port on every node (host network)
    min_nodes: int = Field(default=1, ge=1)  # a release completes when at least this many serve
    waves: list[Wave] = Field(default_factory=list)  # e.g. [1, "50%", "100%"]; empty: one swap
    keep_releases: int = Field(default=5, ge=2)  # images beyond these leave every node
    # Each node's own Docker endpoint, for retention (a manager cannot remove a node's images):
    # `{hostname}` and `{address}` are filled in, e.g. "tcp://{address}:2376" or
    # "ssh://deploy@{address}"; None: the lab's sockets, `unix://<run_dir>/<hostname>/docker.sock`.
    node_engine: str | None = None
    state_dir: Path = LAB_STATE_DIR  # the edge proxy's files and the lab's node data
    run_dir: Path = LAB_RUN_DIR  # the lab's sockets, pids and engine exec roots (short paths)
    health_path: str = "/health"  # probed inside every task for its health
    # The webapp store configuration (TOML) every task gets at /app/application.conf; None: the
    # lab's PostgreSQL (`<state_dir>/store.conf`, written by `swarm up`) if there, else SQLite per node.
    store_config: Path | None = None
    # The release lock: a Swarm config whose labels hold the holder and its lease.
    lock_lease: float = Field(default=60, gt=0)
    lock_renew: float = Field(default=15, gt=0)
    lock_clock_skew: float = Field(default=5, ge=0)

    def node_endpoint(self, hostname: str, address: str) -> str:
        """The Docker endpoint of the node called `hostname` at `address` (see `node_engine`)."""
        if self.node_engine is None:
            return f"unix://{self.run_dir.absolute()}/{hostname}/docker.sock"
        return self.node_engine.format(hostname=hostname, address=address)

    @field_validator("waves")
    @classmethod
    def _waves(cls, value: list[Wave]) -> list[Wave]:
        return validate_waves(value)

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] == value[1] or not all(0 < port < 65536 for port in value):
            raise ValueError(f"swarm.ports {list(value)} must be two different ports 1..65535")
        return value
