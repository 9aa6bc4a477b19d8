"""Pure decisions of the local target's guards: lock records, address claims, orphans, retention."""

from __future__ import annotations

from pathlib import Path

from flows.targets.base import LockHolder
from flows.targets.local import guards
from flows.targets.local.containers import Registration
from flows.targets.local.guards import Claim
from flows.targets.local.status import ContainerFacts

HOLDER = LockHolder("release v2", "run-7", 123, "ci-host", "2026-12-01T10:00:00+00:00")


def test_the_holder_record_round_trips_and_a_cut_record_is_unknown() -> None:
    assert guards.holder_from_json(guards.holder_json(HOLDER)) == HOLDER
    assert guards.holder_from_json("") is None
    assert guards.holder_from_json('{"operation": "rel') is None
    assert guards.describe_holder(None) == "a process that has not recorded itself yet"


def test_lock_messages_name_the_holder_and_what_to_do() -> None:
    assert guards.lock_waiting_message(HOLDER, 5.2, 60) == (
        "waiting for the target lock held by release v2 (run run-7, pid 123 on ci-host, "
        "since 2026-12-01T10:00:00+00:00) (5s of at most 60s)"
    )
    message = guards.lock_timeout_message(HOLDER, 60, Path("/s/release.lock"))
    assert "still held by release v2 (run run-7, pid 123" in message
    assert "after 60s" in message and "`kill 123`" in message
    assert "`fuser -v /s/release.lock`" in guards.lock_timeout_message(None, 1, Path("/s/release.lock"))


def test_an_address_is_explained_by_its_claim() -> None:
    mine, other = Path("/srv/a"), "/srv/b"
    claim = Claim("127.0.0.1:9080", other, 4711, "2026-12-01T10:00:00+00:00")
    assert guards.address_problem("127.0.0.1:9080", True, claim, True, mine) is None  # free wins
    held = guards.address_problem("127.0.0.1:9080", False, claim, True, mine)
    assert held is not None
    assert "another deliverypipeline target (state dir /srv/b, haproxy pid 4711" in held
    assert "`deliverypipeline local down --state-dir /srv/b`" in held
    own = guards.address_problem(
        "127.0.0.1:9080", False, Claim("127.0.0.1:9080", str(mine), 9, "t"), True, mine
    )
    assert own is not None and "`kill 9`" in own
    foreign = guards.address_problem("127.0.0.1:9080", False, claim, False, mine)  # stale claim
    assert foreign is not None and "no deliverypipeline target" in foreign
    assert "ss -ltnp 'sport = :9080'" in foreign
    assert guards.distinct_addresses_problem("127.0.0.1:1", "127.0.0.1:1") is not None
    assert guards.distinct_addresses_problem("127.0.0.1:1", "127.0.0.1:2") is None


def test_claims_round_trip_one_file_per_address() -> None:
    claim = Claim("127.0.0.1:9080", "/srv/a", 1, "t")
    assert Claim.from_json(claim.to_json()) == claim
    assert Claim.from_json("{}") is None
    assert guards.claim_file_name("127.0.0.1:9080") == "127.0.0.1_9080.json"


def test_the_identity_is_a_stable_short_hash_of_the_absolute_state_dir() -> None:
    first = guards.target_identity(Path("/var/lib/deliverypipeline/local"))
    assert first == guards.target_identity(Path("/var/lib/deliverypipeline/local"))
    assert len(first) == 8 and first != guards.target_identity(Path("/var/lib/other"))


def facts(name: str, port: int | None, environment: str = "node-1") -> ContainerFacts:
    return ContainerFacts(name, name, "running", "healthy", "1", "img", port, environment)


def test_orphans_are_the_containers_nothing_points_at() -> None:
    containers = [
        facts("serving", 1001),
        facts("proxied", 1002),
        facts("busy", 1003, "node-2"),
        facts("left", 1004),
    ]
    found = guards.orphans(
        containers, serving={"serving"}, proxied_ports={1002, 1}, busy_environments={"node-2"}
    )
    assert [f.name for f in found] == ["left"]
    assert [f.name for f in guards.orphans([facts("stopped", None)], set(), {1}, set())] == ["stopped"]


def reg(image: str) -> Registration:
    return Registration(image, 8080)


def test_retention_keeps_the_last_k_and_the_running_versions() -> None:
    versions = {v: reg(f"r/app:{v}") for v in ("v1", "v2", "v3", "v4", "v5")}
    releases = ["v1", "v2", "v3", "v4", "v5"]
    assert guards.versions_to_prune(releases, versions, running={"v5", "v4"}, keep=2) == ["v1", "v2", "v3"]
    # prod still runs v1 (e.g. a canary never swapped): never pruned
    assert guards.versions_to_prune(releases, versions, running={"v1", "v5"}, keep=2) == ["v2", "v3"]
    # registered but never deployed (a release under way): never pruned, nor an image it shares
    versions["next"] = reg("r/app:v2")
    versions["other"] = reg("r/app:other")
    assert guards.versions_to_prune(releases, versions, running=set(), keep=2) == ["v1", "v3"]
    assert guards.touched(["v1", "v2", "v3"], "v1") == ["v2", "v3", "v1"]
