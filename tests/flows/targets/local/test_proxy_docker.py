"""The proxy with a real HAProxy before two tiny HTTP servers: traffic counters and canary weights.

The environments' "containers" are two in-process HTTP servers (one answers 500 on /boom), so
the proxy, its admin socket and its counters are real while no Docker engine is involved: a stub
reports the servers as running containers. Every client's request counts, 5xx included, and an
environment's counters never go back when a swap re-points the servers.
"""

from __future__ import annotations

import http.server
import json
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from flows.config import PipelineConfig
from flows.targets.local.settings import LocalSettings
from flows.targets.local.state import Serving
from flows.targets.local.status import ContainerFacts
from flows.targets.local.target import LocalTarget, LocalTargetError
from tests.support import free_port

pytestmark = pytest.mark.docker


def serve(version: str) -> http.server.ThreadingHTTPServer:
    """A tiny server answering its version as JSON, and 500 on /boom."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 500 if self.path.startswith("/boom") else 200
            body = json.dumps({"version": version}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class StubDocker:
    """Reports the tiny servers as this target's healthy containers."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    def facts(self, name: str) -> ContainerFacts | None:
        port = self.ports.get(name)
        return ContainerFacts(name, name, "running", "healthy", name, "stub", port, name) if port else None

    def find(self, labels: dict[str, str]) -> list[ContainerFacts]:
        return []


@pytest.fixture
def target() -> Iterator[LocalTarget]:
    """node-1 runs "blue", node-2 runs "green"; node-1 holds prod. The proxy is stopped afterwards."""
    servers = {"blue": serve("blue"), "green": serve("green")}
    ports = {name: server.server_address[1] for name, server in servers.items()}
    state_dir = Path(tempfile.mkdtemp(prefix="dpt-"))
    config = PipelineConfig(
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        local=LocalSettings(state_dir=state_dir),
    )
    made = LocalTarget(config, client=object())
    made.site._docker = StubDocker(ports)  # type: ignore[assignment]
    with made.site.state.update() as state:
        state.current = {
            "node-1": Serving("blue", ports["blue"], "blue"),
            "node-2": Serving("green", ports["green"], "green"),
        }
        state.roles = {"prod": "node-1", "preprod": "node-2"}
    made.ensure_proxy()
    yield made
    made.down(purge=True)
    for server in servers.values():
        server.shutdown()
        server.server_close()
    shutil.rmtree(state_dir, ignore_errors=True)


def hit(url: str, times: int) -> Counter[str]:
    """`times` requests over new connections; the versions (or statuses) answered."""
    seen: Counter[str] = Counter()
    for _ in range(times):
        response = requests.get(url, headers={"Connection": "close"}, timeout=10)
        seen[response.json()["version"] if response.status_code == 200 else str(response.status_code)] += 1
    return seen


def test_traffic_counts_every_request_and_stays_monotonic_across_a_swap(target: LocalTarget) -> None:
    prod = target.url(target.config.prod_address)
    preprod = target.url(target.config.preprod_address)
    zero = target.traffic("node-1")
    assert (zero.requests, zero.server_errors) == (0, 0)
    assert hit(prod + "/", 20) == {"blue": 20}
    assert hit(prod + "/boom", 5) == {"500": 5}
    hit(preprod + "/", 3)
    blue, green = target.traffic("node-1"), target.traffic("node-2")
    assert (blue.requests, blue.server_errors, blue.connection_errors) == (25, 5, 0)
    assert (green.requests, green.server_errors) == (3, 0)
    assert blue.mean_response_ms is not None and blue.mean_response_ms >= 0

    target.swap("node-1", "node-2")  # green takes prod: prod's `app` server now counts for node-2
    assert hit(prod + "/", 10) == {"green": 10}
    hit(preprod + "/boom", 2)
    blue_after, green_after = target.traffic("node-1"), target.traffic("node-2")
    print(
        f"\nbefore the swap blue={blue} green={green}\nafter the swap blue={blue_after} green={green_after}"
    )
    assert (blue_after.requests, blue_after.server_errors) == (27, 7)
    assert (green_after.requests, green_after.server_errors) == (13, 0)

    # A restarted proxy counts from zero; every reading banked what it saw, so nothing goes back.
    assert target.haproxy.stop()
    assert target.traffic("node-2").requests == 13
    target.ensure_proxy()
    assert target.traffic("node-2").requests == 13
    hit(prod + "/", 4)
    assert (target.traffic("node-2").requests, target.traffic("node-1").requests) == (17, 27)


def test_canary_weights_split_prod_approximately(target: LocalTarget) -> None:
    prod = target.url(target.config.prod_address)
    assert target.supports_canary
    before = target.traffic("node-2")
    target.set_traffic_share("node-2", 25)
    split = hit(prod + "/", 200)
    print(f"\ncanary 25%: {dict(split)}")
    assert split["blue"] + split["green"] == 200
    assert 40 <= split["green"] <= 60
    assert (
        target.traffic("node-2").requests - before.requests == split["green"]
    )  # the canary counts for node-2
    target.set_traffic_share("node-2", 100)
    assert hit(prod + "/", 20) == {"green": 20}
    target.set_traffic_share("node-2", 0)
    assert hit(prod + "/", 20) == {"blue": 20}
    slots = target.haproxy.slots()
    assert (slots["prod/canary"].weight, slots["prod/canary"].serving, slots["prod/app"].weight) == (
        0,
        False,
        100,
    )
    with pytest.raises(LocalTargetError, match=r"percentage, 0\.\.100"):
        target.set_traffic_share("node-2", 101)
    assert any("canary: 25%" in e.message for e in target.events("node-2", datetime(2000, 1, 1)))
