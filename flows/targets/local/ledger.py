"""The traffic ledger file: HAProxy's per-server counters banked per environment, kept monotonic.

The accounting is pure (`traffic`); this reads the running proxy's counters and servers, banks
their growth into the ledger file before every re-point, and answers readings. Environments
are known by their endpoints (host and port), so any proxy's servers can be credited.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from flows.targets.base import TrafficCounters
from flows.targets.local import traffic
from flows.targets.local.haproxy import HAProxy
from flows.targets.local.plans import Endpoint

Endpoints = Mapping[str, Collection[Endpoint]]  # environment -> where its servers point
Snapshot = tuple[traffic.Ledger, dict[str, traffic.ServerStat], dict[str, str]]


class TrafficBook:
    """The ledger of one proxy: bank before a re-point, read an environment's counters."""

    def __init__(self, haproxy: HAProxy, path: Path) -> None:
        """`path`: the ledger file (`traffic.json`)."""
        self.haproxy = haproxy
        self.path = path

    def _snapshot(self, endpoints: Endpoints) -> Snapshot:
        """The ledger (re-based on the running proxy), every server's counters, and their owners."""
        try:
            ledger = traffic.Ledger.from_json(self.path.read_text())
        except FileNotFoundError:
            ledger = traffic.Ledger()
        pid = self.haproxy.pid()
        if pid is None:
            return ledger, {}, {}
        ledger = traffic.rebased(ledger, pid)
        return ledger, self.haproxy.stats(), traffic.owners(self.haproxy.slots(), endpoints)

    def banked(self, endpoints: Endpoints) -> Snapshot:
        """Bank every server's growth now and save the ledger; the snapshot after it."""
        ledger, stats, owned = self._snapshot(endpoints)
        if not stats:
            return ledger, stats, owned
        banked = traffic.bank(ledger, stats, owned)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(banked.to_json())
        os.replace(tmp, self.path)
        return banked, stats, owned

    def bank(self, endpoints: Endpoints) -> None:
        """Before servers are re-pointed: credit their counters to the environments they served.

        Callers hold the ops lock (and so no reading interleaves).
        """
        if self.haproxy.running():
            self.banked(endpoints)

    def reading(self, endpoints: Endpoints, environment: str) -> TrafficCounters:
        """`environment`'s cumulative counters (banked first, so no later reading goes below it)."""
        ledger, stats, owned = self.banked(endpoints)
        return traffic.reading(ledger, stats, owned, environment)
