"""Pure accounting of HAProxy's per-server counters into per-environment traffic that never goes back.

HAProxy counts per server (`show stat`: `req_tot`, `hrsp_5xx`, `econ`, `eresp`, `rtime`), every
client's requests included. An environment's traffic is the sum over the servers that point at
one of its endpoints now (by host and port; locally its container's port, from prod's `app`,
preprod's `app` and prod's `canary`; a fleet's node addresses alike). A server is re-pointed
by a deploy, a swap or a canary, and its counters then carry the old container's requests; so
before every re-point the target *banks* each server's growth since the last bank into the
environment it pointed at, and a reading is `banked[env]` plus the growth since the bank of the
servers pointing at `env` now. Readings of an environment are therefore monotonic across swaps,
and each request is attributed to the environment whose container answered it (up to the few
milliseconds between the bank and the switch). A new HAProxy process starts its counters at
zero: the ledger notices the new pid and re-bases on zero, keeping what was banked.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from flows.targets.base import TrafficCounters
from flows.targets.local.plans import LOOPBACK, Endpoint
from flows.targets.local.replies import ServerSlot
from flows.targets.local.state import JsonDocument


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one server (or a sum of them)."""

    requests: int = 0
    server_errors: int = 0
    connection_errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        """Field-wise sum."""
        return Counts(
            self.requests + other.requests,
            self.server_errors + other.server_errors,
            self.connection_errors + other.connection_errors,
        )

    def growth_since(self, base: Counts) -> Counts:
        """What was counted after `base`; a counter found below its base was reset, so all of it is new."""

        def grown(now: int, then: int) -> int:
            return now - then if now >= then else now

        return Counts(
            grown(self.requests, base.requests),
            grown(self.server_errors, base.server_errors),
            grown(self.connection_errors, base.connection_errors),
        )


@dataclass(frozen=True)
class ServerStat:
    """One server row of `show stat`: its counters and its recent mean response time."""

    counts: Counts
    mean_response_ms: float | None  # HAProxy's `rtime`: mean over its last 1024 requests


def _int(row: Mapping[str, str], name: str) -> int:
    value = row.get(name) or ""
    return int(value) if value.isdigit() else 0


def parse_stat(text: str) -> dict[str, ServerStat]:
    """`show stat` CSV -> {"backend/server": stat} for server rows (not FRONTEND/BACKEND).

    requests = `req_tot` (HTTP requests sent to the server; `stot` where it is empty), server
    errors = `hrsp_5xx`, connection errors = `econ` + `eresp` (no connection, or no answer).
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    reader = csv.DictReader([lines[0][2:], *[line for line in lines[1:] if line.strip()]])
    stats: dict[str, ServerStat] = {}
    for row in reader:
        name = row.get("svname") or ""
        if name in ("FRONTEND", "BACKEND") or not name:
            continue
        requests = _int(row, "req_tot") if (row.get("req_tot") or "").isdigit() else _int(row, "stot")
        counts = Counts(requests, _int(row, "hrsp_5xx"), _int(row, "econ") + _int(row, "eresp"))
        rtime = row.get("rtime") or ""
        stats[f"{row['pxname']}/{name}"] = ServerStat(counts, float(rtime) if rtime.isdigit() else None)
    return stats


def owners(slots: Mapping[str, ServerSlot], endpoints: Mapping[str, Collection[Endpoint]]) -> dict[str, str]:
    """{"backend/server": environment} for each server pointing at one of an environment's endpoints.

    `endpoints`: where each environment answers (one container's port here; every node's
    address for a fleet), matched on host and port.
    """
    by_endpoint = {endpoint: env for env, owned in endpoints.items() for endpoint in owned}
    return {key: by_endpoint[slot.endpoint] for key, slot in slots.items() if slot.endpoint in by_endpoint}


def local_endpoints(ports: Mapping[str, int | None]) -> dict[str, list[Endpoint]]:
    """Each environment's published 127.0.0.1 port as its one endpoint (none without a port)."""
    return {env: [Endpoint(LOOPBACK, port)] if port is not None else [] for env, port in ports.items()}


@dataclass
class Ledger(JsonDocument):
    """What was banked per environment, and each server's counters at the last bank."""

    proxy_pid: int | None = None
    banked: dict[str, Counts] = field(default_factory=dict)  # environment -> counts
    baseline: dict[str, Counts] = field(default_factory=dict)  # "backend/server" -> counts

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        """Parse `traffic.json` (empty text: an empty ledger)."""
        raw = cls.json_object(text)
        return cls(
            proxy_pid=raw.get("proxy_pid"),
            banked={k: Counts(**v) for k, v in raw.get("banked", {}).items()},
            baseline={k: Counts(**v) for k, v in raw.get("baseline", {}).items()},
        )


def rebased(ledger: Ledger, proxy_pid: int) -> Ledger:
    """The ledger for the running proxy: a different process counts from zero, so its baselines are 0."""
    if ledger.proxy_pid == proxy_pid:
        return ledger
    return Ledger(proxy_pid=proxy_pid, banked=dict(ledger.banked), baseline={})


def bank(ledger: Ledger, stats: Mapping[str, ServerStat], owned: Mapping[str, str]) -> Ledger:
    """Credit each server's growth since the last bank to the environment it points at now.

    Called just before servers are re-pointed; afterwards every baseline is the current counters.
    """
    banked = dict(ledger.banked)
    for key, stat in stats.items():
        env = owned.get(key)
        if env is None:
            continue
        growth = stat.counts.growth_since(ledger.baseline.get(key, Counts()))
        banked[env] = banked.get(env, Counts()) + growth
    return Ledger(
        proxy_pid=ledger.proxy_pid,
        banked=banked,
        baseline={key: stat.counts for key, stat in stats.items()},
    )


def reading(
    ledger: Ledger, stats: Mapping[str, ServerStat], owned: Mapping[str, str], environment: str
) -> TrafficCounters:
    """An environment's cumulative counters: banked plus the growth of the servers pointing at it now.

    The mean response time is the servers' `rtime` weighted by their requests since the bank
    (or by all their requests when none came since), None when no server of it answered yet.
    """
    total = ledger.banked.get(environment, Counts())
    weighted, weights = 0.0, 0
    for key, stat in stats.items():
        if owned.get(key) != environment:
            continue
        growth = stat.counts.growth_since(ledger.baseline.get(key, Counts()))
        total = total + growth
        weight = growth.requests or stat.counts.requests
        if stat.mean_response_ms is not None and weight:
            weighted += stat.mean_response_ms * weight
            weights += weight
    return TrafficCounters(
        requests=total.requests,
        server_errors=total.server_errors,
        connection_errors=total.connection_errors,
        mean_response_ms=weighted / weights if weights else None,
    )
