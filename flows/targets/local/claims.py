"""Which target's proxy holds which address on this host: the claims registry and bind tests.

One small JSON file per address under `/run/deliverypipeline/claims` names the state dir and
HAProxy pid holding it; a bind test tells whether an address is free. `address_problems` puts
both together into what the user is told (the wording is decided in `guards`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from flows.targets.local import guards
from flows.targets.local.guards import Claim
from flows.targets.local.plans import split_address
from flows.targets.local.state import file_lock, pid_alive


def address_bindable(address: str) -> bool:
    """Whether a server could listen on `address` now (a bind test, as HAProxy binds: SO_REUSEADDR).

    SO_REUSEADDR lets the test pass over connections in TIME_WAIT but not over a listener;
    without SO_REUSEPORT it also fails over a listener that set SO_REUSEPORT.
    """
    host, port = split_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def is_haproxy(pid: int) -> bool:
    """Whether `pid` is a live HAProxy process (guards against a recycled pid in a stale claim)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("haproxy")
    except OSError:
        return False


def default_claims_dir() -> Path:
    """Where address claims live: /run/deliverypipeline/claims (tmpfs, root), else under the temp dir."""
    run = Path("/run")
    if os.access(run, os.W_OK):
        return run / "deliverypipeline" / "claims"
    return Path(tempfile.gettempdir()) / "deliverypipeline-claims"


class ClaimRegistry:
    """One small JSON file per address, naming the state dir and HAProxy pid holding it.

    Shared by every target on the host; changed under `claims.lock`, so two targets starting
    their proxies at the same moment check and claim one after the other.
    """

    def __init__(self, directory: Path | None = None) -> None:
        """`directory`: default `default_claims_dir()`."""
        self.directory = directory or default_claims_dir()

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the registry while checking and claiming addresses."""
        return file_lock(self.directory / "claims.lock")

    def _path(self, address: str) -> Path:
        return self.directory / guards.claim_file_name(address)

    def read(self, address: str) -> Claim | None:
        """The claim on `address`, None when there is none (or it is unreadable)."""
        try:
            return Claim.from_json(self._path(address).read_text())
        except OSError:
            return None

    @staticmethod
    def alive(claim: Claim | None) -> bool:
        """Whether a claim's HAProxy still runs."""
        return claim is not None and pid_alive(claim.pid) and is_haproxy(claim.pid)

    def write(self, claim: Claim) -> None:
        """Record a claim (atomically: temp file and rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(claim.address)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(claim.to_json())
        os.replace(tmp, path)

    def release(self, state_dir: Path) -> list[str]:
        """Remove every claim of `state_dir`; the addresses released."""
        released = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                claim = Claim.from_json(path.read_text())
            except OSError:
                continue
            if claim is not None and claim.state_dir == str(state_dir):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                released.append(claim.address)
        return released

    def address_problems(self, addresses: Sequence[str], state_dir: Path) -> list[str]:
        """Why the proxy of `state_dir` could not take `addresses` now (empty: it can).

        A bind test per address; an address that cannot be bound is explained from the registry:
        another state dir's HAProxy (and how to stop it), or a foreign process.
        """
        if len(addresses) == 2:
            problem = guards.distinct_addresses_problem(*addresses)
            if problem is not None:
                return [problem]
        problems = []
        for address in addresses:
            claim = self.read(address)
            found = guards.address_problem(
                address, address_bindable(address), claim, self.alive(claim), state_dir
            )
            if found is not None:
                problems.append(found)
        return problems
