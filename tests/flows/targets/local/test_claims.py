"""The host's address claims: what a proxy records, and why an address cannot be taken."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from flows.targets.local.claims import ClaimRegistry, address_bindable
from flows.targets.local.guards import Claim
from tests.support import free_port


def test_a_claim_is_written_read_and_released_by_its_state_dir(tmp_path: Path) -> None:
    claims = ClaimRegistry(tmp_path / "claims")
    mine = Claim("127.0.0.1:8080", "/state/a", os.getpid(), "2026-12-01T10:00:00+00:00")
    theirs = Claim("127.0.0.1:8081", "/state/b", os.getpid(), "2026-12-01T10:00:00+00:00")
    with claims.lock():
        claims.write(mine)
        claims.write(theirs)
    assert claims.read("127.0.0.1:8080") == mine
    assert claims.read("127.0.0.1:9999") is None
    assert not claims.alive(mine)  # this process is no HAProxy: a claim of it is stale
    assert claims.release(Path("/state/a")) == ["127.0.0.1:8080"]
    assert claims.read("127.0.0.1:8080") is None and claims.read("127.0.0.1:8081") == theirs


def test_address_problems_name_a_foreign_listener_and_pass_free_addresses(tmp_path: Path) -> None:
    claims = ClaimRegistry(tmp_path / "claims")
    free = f"127.0.0.1:{free_port()}"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = f"127.0.0.1:{squatter.getsockname()[1]}"
        assert not address_bindable(taken) and address_bindable(free)
        [problem] = claims.address_problems([taken, free], tmp_path / "state")
    assert problem.startswith(f"address {taken} is in use by a process that is no deliverypipeline target")
    assert claims.address_problems([free, free], tmp_path / "state") == [
        f"prod_address and preprod_address are both {free}; configure two different addresses"
    ]
