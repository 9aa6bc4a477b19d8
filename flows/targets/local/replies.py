"""Pure reading of what HAProxy's admin socket answers: command results and `show servers state`.

The executor (`haproxy`) asks; these parse the answers into facts the jobs decide on: which
server points where (any backend, any number of servers) and which environment holds a role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flows.targets.local.plans import ROLES, SERVER, Endpoint

_ACCEPTED_REPLY = re.compile(r"^(IP changed|no need to change|nothing changed|port changed)")


def command_errors(reply: str) -> list[str]:
    """The lines of an admin-socket reply that report a failure (an empty list means success)."""
    return [
        line.strip()
        for line in reply.splitlines()
        if line.strip() and not _ACCEPTED_REPLY.match(line.strip())
    ]


@dataclass(frozen=True)
class ServerState:
    """A backend's `app` server as `show servers state` reports it."""

    backend: str
    port: int
    serving: bool  # operational state RUNNING (not stopped or in maintenance)


def _server_rows(text: str) -> Iterator[dict[str, str]]:
    """Each server line of `show servers state`, as {column: value} by the `# ` header line."""
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split()
            continue
        fields = line.split()
        if not header or len(fields) != len(header):
            continue
        yield dict(zip(header, fields, strict=True))


def parse_servers_state(text: str) -> dict[str, ServerState]:
    """Parse `show servers state` into {backend: its `app` server}."""
    servers: dict[str, ServerState] = {}
    for row in _server_rows(text):
        if row["srv_name"] != SERVER:
            continue
        servers[row["be_name"]] = ServerState(
            backend=row["be_name"], port=int(row["srv_port"]), serving=row["srv_op_state"] == "2"
        )
    return servers


@dataclass(frozen=True)
class ServerSlot:
    """Any server of any backend as `show servers state` reports it."""

    backend: str
    server: str
    port: int
    serving: bool
    weight: int  # the user weight: 0 takes no new requests
    host: str = "127.0.0.1"

    @property
    def key(self) -> str:
        """`backend/server`, as the runtime API names it."""
        return f"{self.backend}/{self.server}"

    @property
    def endpoint(self) -> Endpoint:
        """Where it points (parked servers point at port 1)."""
        return Endpoint(self.host, self.port)


def parse_server_slots(text: str) -> dict[str, ServerSlot]:
    """Parse `show servers state` into {"backend/server": slot} for every server."""
    slots: dict[str, ServerSlot] = {}
    for row in _server_rows(text):
        slot = ServerSlot(
            backend=row["be_name"],
            server=row["srv_name"],
            port=int(row["srv_port"]),
            serving=row["srv_op_state"] == "2",
            weight=int(row["srv_uweight"]),
            host=row.get("srv_addr", "127.0.0.1"),
        )
        slots[slot.key] = slot
    return slots


def roles_from_proxy(
    servers: Mapping[str, ServerState],
    env_ports: Mapping[str, int | None],
) -> dict[str, str] | None:
    """Which environment holds which role, read from the proxy's servers; None if it cannot tell.

    A serving backend belongs to the environment whose container has its port; a parked backend
    belongs to the environment left over. Both parked (nothing deployed): the proxy cannot tell.
    """
    names = list(env_ports)
    if len(names) != 2 or set(servers) != set(ROLES):
        return None
    holders: dict[str, str | None] = {}
    for role in ROLES:
        server = servers[role]
        owners = [env for env, port in env_ports.items() if server.serving and port == server.port]
        holders[role] = owners[0] if len(owners) == 1 else None
    known = [env for env in holders.values() if env is not None]
    if len(known) == 2:
        return dict(holders) if known[0] != known[1] else None  # type: ignore[arg-type]
    if len(known) == 1:
        other = next(env for env in names if env != known[0])
        return {role: env if env is not None else other for role, env in holders.items()}
    return None
