"""Pure plans of the proxy: the HAProxy configuration and every runtime command sent to it.

Nothing here touches a socket or a file: each builder takes facts and returns the text or the
commands the HAProxy executor (`haproxy`) carries out, so tests assert plans exactly.

The general shape is a list of `Backend`s, each bound to one address and holding any number of
`Server`s (an endpoint each, optionally weighted and health-checked), and commands keyed by
`backend/server`: `switch_commands` re-points any set of servers of any backends in one
admin-socket line, addresses first, so a swap of two backends of N servers each switches
together. The local target's layout is one case of it: two frontends, one per address (prod,
preprod), each with its own backend named like the role; each backend has one server `app`
pointing at the published 127.0.0.1 port of the container of the environment holding that
address, and an environment with no container leaves its server in maintenance (HTTP 503). The
prod backend has a second server, `canary` (weight 0, in maintenance), which a canary points at
another environment's container with a weight: `app` and `canary` weights add up to 100, so a
weight is the share of prod's requests in percent. `noreuseport` makes a second HAProxy on the
same address fail to bind instead of silently sharing the port with the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.errors import TargetError

PROD = "prod"
PREPROD = "preprod"
ROLES = (PROD, PREPROD)
SERVER = "app"
CANARY = "canary"
LOOPBACK = "127.0.0.1"
FULL_WEIGHT = 100  # `app` + `canary` weights on prod: a weight is a percentage of prod's requests
# Where a server with nothing to send to points: never contacted, it stays in maintenance.
PARKED_PORT = 1
# HAProxy is started with this environment and nothing else: it reads no variable, and the run's
# own (its id, the worker's credentials) must not be readable in /proc/<haproxy>/environ.
PROXY_ENVIRONMENT: Mapping[str, str] = {}


class PlanError(TargetError):
    """A plan cannot be made from the given facts; the message says which fact is wrong."""


def split_address(address: str, *, loopback_only: bool = True) -> tuple[str, int]:
    """`"127.0.0.1:8080"` -> `("127.0.0.1", 8080)`; the local target listens only on 127.0.0.1."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise PlanError(
            f"address {address!r} is not HOST:PORT; set prod_address/preprod_address like 127.0.0.1:8080"
        )
    if loopback_only and host != LOOPBACK:
        raise PlanError(f"address {address!r}: the local target binds only 127.0.0.1")
    if not 0 < int(port) < 65536:
        raise PlanError(f"address {address!r}: the port must be 1..65535; set prod_address/preprod_address")
    return host, int(port)


@dataclass(frozen=True)
class Endpoint:
    """Where a server sends requests: a host and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        """`host:port`."""
        return f"{self.host}:{self.port}"


def local(port: int | None) -> Endpoint | None:
    """A port published on 127.0.0.1 as an endpoint (None stays None: nothing to send to)."""
    return Endpoint(LOOPBACK, port) if port is not None else None


@dataclass(frozen=True)
class Server:
    """One server of a backend: its endpoint (None: parked in maintenance), weight and checks."""

    name: str
    endpoint: Endpoint | None
    weight: int | None = None  # None: HAProxy's default
    check: bool = False  # HAProxy health-checks it (a fleet's nodes come and go)

    def line(self) -> str:
        """The `server` line of the configuration."""
        endpoint = self.endpoint or Endpoint(LOOPBACK, PARKED_PORT)
        words = [f"    server {self.name} {endpoint}"]
        if self.weight is not None:
            words.append(f"weight {self.weight}")
        if self.check:
            words.append("check")
        if self.endpoint is None:
            words.append("disabled")
        return " ".join(words)


@dataclass(frozen=True)
class Backend:
    """A frontend bound to one address and its backend of the same name, with its servers."""

    name: str
    bind: str  # HOST:PORT
    servers: tuple[Server, ...]
    health_path: str | None = None  # `option httpchk GET <path>` for checked servers

    def lines(self) -> list[str]:
        """The frontend and backend sections."""
        backend = [f"backend {self.name}"]
        if self.health_path is not None:
            backend.append(f"    option httpchk GET {self.health_path}")
        return [
            "",
            f"frontend {self.name}",
            f"    bind {self.bind}",
            f"    default_backend {self.name}",
            "",
            *backend,
            *(server.line() for server in self.servers),
        ]


@dataclass(frozen=True)
class ProxyLayout:
    """Where the local proxy listens and keeps its files."""

    prod_address: str
    preprod_address: str
    config_path: Path
    socket_path: Path
    pid_path: Path

    def address(self, role: str) -> str:
        """The address a role (prod or preprod) is served on."""
        return self.prod_address if role == PROD else self.preprod_address


def proxy_config(pid_path: Path, socket_path: Path, backends: Sequence[Backend]) -> str:
    """A HAProxy configuration serving `backends`, run as a daemon with an admin socket.

    `http-server-close` opens a fresh server connection per request, so after a switch no pooled
    connection reaches the old server; `retry-on conn-failure empty-response` retries the rare
    connection caught during a switch.
    """
    lines = [
        "# Generated by the deliverypipeline local target; rewritten at every proxy start.",
        "global",
        "    daemon",
        "    noreuseport",
        f"    pidfile {pid_path}",
        f"    stats socket {socket_path} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    option http-server-close",
        "    option redispatch",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 60s",
        "    timeout queue 10s",
    ]
    for backend in backends:
        lines += backend.lines()
    return "\n".join(lines) + "\n"


def local_backends(layout: ProxyLayout, ports: Mapping[str, int | None]) -> list[Backend]:
    """The local target's two backends: `app` at `ports[role]` (None: parked), prod's `canary` parked."""
    backends = []
    for role in ROLES:
        split_address(layout.address(role))
        app = Server(SERVER, local(ports.get(role)), FULL_WEIGHT if role == PROD else None)
        canary = (Server(CANARY, None, 0),) if role == PROD else ()
        backends.append(Backend(role, layout.address(role), (app, *canary)))
    return backends


def haproxy_config(layout: ProxyLayout, ports: Mapping[str, int | None]) -> str:
    """The local proxy's configuration: servers at the published ports of the environments' containers.

    Servers have no HAProxy checks: the target only points a server at a container Docker
    reports healthy.
    """
    return proxy_config(layout.pid_path, layout.socket_path, local_backends(layout, ports))


# --- runtime commands -----------------------------------------------------------------------


def readdress_command(backend: str, server: str, endpoint: Endpoint) -> str:
    """Point a server at another endpoint (its state unchanged)."""
    return f"set server {backend}/{server} addr {endpoint.host} port {endpoint.port}"


def point_server(backend: str, server: str, endpoint: Endpoint | None) -> list[str]:
    """Point a server at an endpoint and make it ready, or park it in maintenance (None)."""
    if endpoint is None:
        return [f"set server {backend}/{server} state maint"]
    return [readdress_command(backend, server, endpoint), f"set server {backend}/{server} state ready"]


def weight_command(backend: str, server: str, weight: int) -> str:
    """Give a server a weight (its share among its backend's servers), no reload."""
    return f"set weight {backend}/{server} {weight}"


def switch_commands_for(moves: Sequence[tuple[str, str, Endpoint | None]]) -> list[str]:
    """Re-point any servers of any backends at once: every address change first, then the states.

    `moves` are (backend, server, endpoint or None to park). Sent as one line over one
    admin-socket connection, so every address switches together.
    """
    plans = [point_server(backend, server, endpoint) for backend, server, endpoint in moves]
    addr = [cmd for plan in plans for cmd in plan if " addr " in cmd]
    rest = [cmd for plan in plans for cmd in plan if " addr " not in cmd]
    return addr + rest


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise PlanError(f"unknown role {role!r}; expected one of {ROLES}")


def point_commands(role: str, port: int | None) -> list[str]:
    """Runtime API commands pointing a role's `app` server at a local port, or parking it (None)."""
    _check_role(role)
    return point_server(role, SERVER, local(port))


def switch_commands(ports: Mapping[str, int | None]) -> list[str]:
    """Commands re-pointing several roles' `app` servers at once (a swap): addresses, then states."""
    for role in ports:
        _check_role(role)
    return switch_commands_for([(role, SERVER, local(ports[role])) for role in ROLES if role in ports])


def deploy_commands(
    role: str, port: int, canary_port: int | None, canary_weight: int, old_port: int | None
) -> list[str]:
    """Point a role at a freshly deployed container on `port`; a canary on the old one follows it.

    A canary that sends a share of prod to the container being replaced (`canary_port` ==
    `old_port`, weight above 0) is re-addressed to the new one first, so that share never
    reaches a container about to retire.
    """
    commands = point_commands(role, port)
    if canary_weight > 0 and old_port is not None and canary_port == old_port:
        commands.insert(0, readdress_command(PROD, CANARY, Endpoint(LOOPBACK, port)))
    return commands


def share_commands(
    backend: str, main: Sequence[str], canary: Mapping[str, Endpoint | None], percent: int
) -> list[str]:
    """Send `percent` of a backend's requests to its `canary` servers, the rest to its `main` ones.

    Weights, no reload (roundrobin honours them at run time). 0 (or no canary endpoint) parks
    the canaries and gives the main servers their full weight back. The canaries' weights are
    raised before the main ones are lowered, so the weights never all reach 0 mid-way.
    """
    if not 0 <= percent <= FULL_WEIGHT:
        raise PlanError(f"a traffic share is a percentage, 0..100; got {percent}")
    if percent == 0 or any(endpoint is None for endpoint in canary.values()):
        return [
            *(weight_command(backend, server, FULL_WEIGHT) for server in main),
            *(weight_command(backend, server, 0) for server in canary),
            *(f"set server {backend}/{server} state maint" for server in canary),
        ]
    commands = switch_commands_for([(backend, server, endpoint) for server, endpoint in canary.items()])
    commands += [weight_command(backend, server, percent) for server in canary]
    return commands + [weight_command(backend, server, FULL_WEIGHT - percent) for server in main]


def canary_commands(port: int | None, percent: int) -> list[str]:
    """Runtime commands sending `percent` of prod's requests to the container on `port`.

    `app` keeps `100 - percent`, `canary` gets `percent`; 0 (or no port) ends the canary.
    """
    return share_commands(PROD, [SERVER], {CANARY: local(port)}, percent)


def command_line(commands: Sequence[str]) -> str:
    """Several runtime commands as one line HAProxy runs in order."""
    if not commands:
        raise PlanError("no runtime command to send")
    return "; ".join(commands) + "\n"
