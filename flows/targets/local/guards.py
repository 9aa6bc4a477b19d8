"""Pure decisions that keep one local target the only one acting on its addresses and containers.

The release lock's holder record and what a waiter says; address claims (which target holds an
address, and what to tell the user); the target's identity (labels and container names, so two
state dirs never collide); which containers are orphans; which images retention prunes. Nothing
here touches a file, a socket or Docker: the executors and the jobs carry these decisions out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.targets.base import LockHolder
from flows.targets.local.containers import Registration
from flows.targets.local.plans import split_address
from flows.targets.local.status import ContainerFacts

# --- the release lock -----------------------------------------------------------------------

LOCK_LOG_EVERY_S = 5.0


def holder_json(holder: LockHolder) -> str:
    """The holder record written into the lock file once the lock is held."""
    return json.dumps(asdict(holder), sort_keys=True)


def holder_from_json(text: str) -> LockHolder | None:
    """The holder record read back; None when empty or cut (the holder is just writing it)."""
    try:
        raw = json.loads(text)
        return LockHolder(
            operation=str(raw["operation"]),
            run=str(raw["run"]),
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            started=str(raw["started"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def describe_holder(holder: LockHolder | None) -> str:
    """Who holds the lock, in words (a holder that has not written its record yet is 'unknown')."""
    return holder.describe() if holder is not None else "a process that has not recorded itself yet"


def lock_waiting_message(holder: LockHolder | None, waited: float, wait_s: float) -> str:
    """What a waiter logs every few seconds."""
    return (
        f"waiting for the target lock held by {describe_holder(holder)} "
        f"({waited:.0f}s of at most {wait_s:.0f}s)"
    )


def lock_timeout_message(holder: LockHolder | None, wait_s: float, path: Path) -> str:
    """The error once the wait is over: who holds it, and what to do."""
    stop = f"`kill {holder.pid}`" if holder is not None else f"`fuser -v {path}` finds it"
    return (
        f"the target lock {path} is still held by {describe_holder(holder)} after {wait_s:.0f}s; "
        f"let that operation finish and retry, or, if it hung, stop it ({stop}): "
        "a dead holder frees the lock at once"
    )


# --- address claims -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An address held by one target's HAProxy: written when its proxy starts, removed by `down`."""

    address: str
    state_dir: str
    pid: int  # the HAProxy process
    since: str  # ISO 8601, UTC

    def to_json(self) -> str:
        """Serialise for the claims registry."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Claim | None:
        """Parse a claim file; None when it is unreadable."""
        try:
            raw = json.loads(text)
            return cls(str(raw["address"]), str(raw["state_dir"]), int(raw["pid"]), str(raw["since"]))
        except (ValueError, KeyError, TypeError):
            return None


def claim_file_name(address: str) -> str:
    """`127.0.0.1:8080` -> `127.0.0.1_8080.json`: one claim file per address."""
    host, port = split_address(address)
    return f"{host}_{port}.json"


def address_problem(
    address: str, bindable: bool, claim: Claim | None, claim_alive: bool, state_dir: Path
) -> str | None:
    """Why this target cannot serve `address` (None when it can).

    `bindable`: a bind test on the address succeeded; `claim`: the registry's record of the
    address and `claim_alive` whether its HAProxy still runs. A free address is always usable
    (a claim of a dead or address-less proxy is stale).
    """
    if bindable:
        return None
    _, port = split_address(address)
    if claim is not None and claim_alive and claim.state_dir != str(state_dir):
        return (
            f"address {address} is served by another deliverypipeline target (state dir "
            f"{claim.state_dir}, haproxy pid {claim.pid}, since {claim.since}): stop it with "
            f"`deliverypipeline local down --state-dir {claim.state_dir}` or configure other "
            "prod/preprod addresses"
        )
    if claim is not None and claim_alive:
        return (
            f"address {address} is held by this target's own HAProxy (pid {claim.pid}) whose pid file "
            f"or admin socket is gone: stop it (`kill {claim.pid}`) and retry"
        )
    return (
        f"address {address} is in use by a process that is no deliverypipeline target: find it with "
        f"`ss -ltnp 'sport = :{port}'` and stop it, or configure other prod/preprod addresses"
    )


def distinct_addresses_problem(prod: str, preprod: str) -> str | None:
    """Prod and preprod must be two addresses."""
    if prod == preprod:
        return f"prod_address and preprod_address are both {prod}; configure two different addresses"
    return None


# --- identity and orphans -------------------------------------------------------------------


def target_identity(state_dir: Path) -> str:
    """A short stable id of a target: the first 8 hex digits of the SHA-256 of its absolute state dir."""
    return hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:8]


def orphans(
    containers: Sequence[ContainerFacts],
    serving: Collection[str],
    proxied_ports: Collection[int],
    busy_environments: Collection[str],
) -> list[ContainerFacts]:
    """This target's containers no environment points at: left by a killed or failed deploy.

    Spared: the containers environments serve from (`serving` names, plus those a live process
    is still draining and retiring), any container a proxy server points at (its port is in
    `proxied_ports`, e.g. a deploy killed between re-pointing and recording), and containers of
    environments a live process is deploying right now.
    """
    return [
        facts
        for facts in containers
        if facts.name not in serving
        and (facts.port is None or facts.port not in proxied_ports)
        and facts.environment not in busy_environments
    ]


# --- retention ------------------------------------------------------------------------------


def touched(releases: Sequence[str], version: str) -> list[str]:
    """The deploy history with `version` moved to its end (most recently deployed last)."""
    return [*(v for v in releases if v != version), version]


def versions_to_prune(
    releases: Sequence[str],
    versions: Mapping[str, Registration],
    running: Collection[str],
    keep: int,
) -> list[str]:
    """Deployed versions whose images go: all but the last `keep` releases and the running ones.

    `releases` is the deploy history (most recently deployed last). A version registered but not
    deployed yet is never a candidate (its release may be under way); an image shared with a
    kept version is never pruned. Order: oldest first.
    """
    known = [v for v in releases if v in versions]
    kept = (set(known[-keep:]) if keep > 0 else set()) | set(running)
    kept_images = {versions[v].image for v in versions if v in kept or v not in known}
    return [v for v in known if v not in kept and versions[v].image not in kept_images]
