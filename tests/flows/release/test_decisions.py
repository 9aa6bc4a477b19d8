"""The pure release decisions: roles by address, readiness, already live, what to swap, consistent answers."""

from __future__ import annotations

import pytest

from flows.release.decisions import (
    Agreement,
    Consistency,
    Readiness,
    Roles,
    already_live,
    assign_roles,
    describe,
    pick_by_address,
    preprod_already_on,
    prod_serving,
    readiness,
    settled,
    swap_pair,
    swappable,
)
from flows.release.errors import DecisionError
from flows.targets.base import GREEN, GREY, LAUNCHING, MISSING, READY, RED, UPDATING, YELLOW, Environment

PROD = "127.0.0.1:8080"
PREPROD = "127.0.0.1:8081"


def env(
    name: str, address: str, version: str | None = "v1", status: str = READY, health: str = GREEN
) -> Environment:
    return Environment(name=name, address=address, version=version, status=status, health=health)


def test_preprod_is_picked_by_address_never_by_name() -> None:
    envs = [env("node-1", PREPROD), env("node-2", PROD)]
    assert pick_by_address(envs, PREPROD).name == "node-1"
    roles = assign_roles(envs, PROD, PREPROD)
    assert (roles.prod.name, roles.preprod.name) == ("node-2", "node-1")


def test_a_missing_address_names_what_was_seen() -> None:
    with pytest.raises(
        DecisionError, match=r"no environment holds the address '127.0.0.1:8081'.*node-1=127.0.0.1:8080"
    ):
        pick_by_address([env("node-1", PROD), env("node-2", "")], PREPROD)
    with pytest.raises(DecisionError, match="environments: none"):
        pick_by_address([], PREPROD)


def test_an_address_held_twice_is_an_error() -> None:
    with pytest.raises(DecisionError, match="several environments hold"):
        pick_by_address([env("node-1", PROD), env("node-2", PROD)], PROD)


def test_prod_and_preprod_must_be_different_environments() -> None:
    with pytest.raises(DecisionError, match="holds both"):
        assign_roles([env("node-1", "app.example.com")], "app", "app")


def test_an_empty_local_target_still_has_roles() -> None:
    envs = [
        env("node-1", PROD, version=None, status=MISSING, health=GREY),
        env("node-2", PREPROD, version=None, status=MISSING, health=GREY),
    ]
    roles = assign_roles(envs, PROD, PREPROD)
    assert roles.preprod.name == "node-2"
    assert settled(roles.preprod)
    assert not already_live(roles, "v1")
    assert swap_pair(roles) == ("node-2", "node-1")


# --- readiness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected", "result"),
    [
        (env("e", PREPROD, "v2"), "v2", Readiness.READY),
        (env("e", PREPROD, "v1"), "v2", Readiness.WAITING),  # still on the old version
        (env("e", PREPROD, "v2", status=UPDATING), "v2", Readiness.WAITING),
        (env("e", PREPROD, "v2", status=LAUNCHING, health=GREY), "v2", Readiness.WAITING),
        (env("e", PREPROD, None, status=MISSING, health=GREY), "v2", Readiness.WAITING),
        (env("e", PREPROD, "v2", health=GREY), "v2", Readiness.WAITING),  # health not known yet
        (env("e", PREPROD, "v2", health=RED), "v2", Readiness.FAILED),
        (env("e", PREPROD, "v2", health=YELLOW), "v2", Readiness.FAILED),
        (env("e", PREPROD, "v1", health=RED), None, Readiness.FAILED),  # no version expected
        (env("e", PREPROD, "v1"), None, Readiness.READY),
    ],
)
def test_readiness(environment: Environment, expected: str | None, result: Readiness) -> None:
    assert readiness(environment, expected, [GREEN]) is result


def test_readiness_accepts_the_configured_healths() -> None:
    assert readiness(env("e", PREPROD, "v2", health=YELLOW), "v2", [GREEN, YELLOW]) is Readiness.READY
    assert readiness(env("e", PREPROD, "v2", health=GREEN), "v2", iter([YELLOW])) is Readiness.FAILED


@pytest.mark.parametrize(
    ("status", "result"),
    [(READY, True), (MISSING, True), (UPDATING, False), (LAUNCHING, False), ("Terminating", False)],
)
def test_settled(status: str, result: bool) -> None:
    assert settled(env("e", PREPROD, status=status)) is result


# --- already live, swap ------------------------------------------------------------------


def test_already_live_when_prod_is_ready_on_the_version() -> None:
    roles = Roles(prod=env("node-1", PROD, "v2"), preprod=env("node-2", PREPROD, "v1"))
    assert already_live(roles, "v2")
    assert not already_live(roles, "v1")  # preprod runs it, prod does not
    updating = Roles(prod=env("node-1", PROD, "v2", status=UPDATING), preprod=roles.preprod)
    assert not already_live(updating, "v2")


def test_swap_pair_names_preprod_first() -> None:
    roles = Roles(prod=env("node-2", PROD), preprod=env("node-1", PREPROD))
    assert swap_pair(roles) == ("node-1", "node-2")


def test_describe() -> None:
    assert describe(env("node-1", PROD, "v3", health=RED)) == (
        "node-1 at 127.0.0.1:8080: version v3, status Ready, health Red"
    )
    assert describe(env("node-2", "", None, status=MISSING, health=GREY)) == (
        "node-2 at -: version -, status Missing, health Grey"
    )


def test_prod_on_the_version_but_unhealthy_is_not_already_live() -> None:
    prod = Environment("node-1", "127.0.0.1:8080", "v2", READY, "Red")
    preprod = Environment("node-2", "127.0.0.1:8081", "v1", READY, "Green")
    roles = Roles(prod=prod, preprod=preprod)
    assert not already_live(roles, "v2")
    assert already_live(roles, "v2", accepted_health=["Green", "Red"])


# --- swappable, prod serving, preprod already on ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (READY, True),
        (MISSING, True),  # a local environment with nothing deployed yet can take an address
        (UPDATING, False),
        (LAUNCHING, False),
        ("Terminating", False),
        ("Terminated", False),  # settled, but EB swaps only Ready environments
    ],
)
def test_swappable(status: str, result: bool) -> None:
    assert swappable(env("e", PREPROD, status=status)) is result


def test_prod_is_serving_only_when_ready_with_a_version_and_not_down() -> None:
    preprod = env("node-2", PREPROD)
    assert prod_serving(Roles(prod=env("node-1", PROD, "v1"), preprod=preprod))
    assert not prod_serving(
        Roles(prod=env("node-1", PROD, None, status=MISSING, health=GREY), preprod=preprod)
    )
    assert not prod_serving(Roles(prod=env("node-1", PROD, "v1", status=UPDATING), preprod=preprod))
    assert not prod_serving(Roles(prod=env("node-1", PROD, "v1", health=RED), preprod=preprod))


def test_preprod_already_on_the_version_only_when_ready_and_healthy() -> None:
    prod = env("node-1", PROD, "v1")
    assert preprod_already_on(Roles(prod=prod, preprod=env("node-2", PREPROD, "v2")), "v2", [GREEN])
    assert not preprod_already_on(Roles(prod=prod, preprod=env("node-2", PREPROD, "v1")), "v2", [GREEN])
    red = Roles(prod=prod, preprod=env("node-2", PREPROD, "v2", health=RED))
    assert not preprod_already_on(red, "v2", [GREEN])
    assert preprod_already_on(red, "v2", [GREEN, RED])
    updating = Roles(prod=prod, preprod=env("node-2", PREPROD, "v2", status=UPDATING))
    assert not preprod_already_on(updating, "v2", [GREEN])


# --- consistent answers --------------------------------------------------------------------------


def test_old_answers_before_the_first_new_one_are_tolerated() -> None:
    tally = Consistency("v2", required=2)
    assert tally.add("v1", True, "HTTP 200, version v1") is Agreement.PENDING
    assert tally.add(None, False, "no answer") is Agreement.PENDING
    assert tally.add("v1", True, "HTTP 200, version v1") is Agreement.PENDING
    assert not tally.first_seen and tally.agreed == 0 and tally.reason == ""


def test_n_agreeing_answers_after_the_first_new_one_pass() -> None:
    tally = Consistency("v2", required=3)
    assert tally.add("v1", True, "old") is Agreement.PENDING
    assert tally.add("v2", True, "first") is Agreement.PENDING  # the first new answer
    assert tally.first_seen and tally.agreed == 0
    assert tally.add("v2", True, "1") is Agreement.PENDING
    assert tally.add("v2", True, "2") is Agreement.PENDING
    assert tally.add("v2", True, "3") is Agreement.PASSED
    assert tally.agreed == 3


def test_an_old_version_after_the_first_new_one_fails() -> None:
    tally = Consistency("v2", required=5)
    tally.add("v2", True, "first")
    assert tally.add("v1", True, "HTTP 200, version v1") is Agreement.FAILED
    assert tally.reason == (
        "after v2 answered, an answer showed v1 (HTTP 200, version v1): "
        "two versions, or a failing one, behind one address"
    )


def test_a_failed_answer_after_the_first_new_one_fails_even_with_the_version() -> None:
    tally = Consistency("v2", required=5)
    tally.add("v2", True, "first")
    assert tally.add("v2", False, "HTTP 500") is Agreement.FAILED
    failing = Consistency("v2", required=5)
    failing.add("v2", True, "first")
    assert failing.add(None, False, "timed out after 5s") is Agreement.FAILED
    assert "showed no version (timed out after 5s)" in failing.reason


def test_one_required_answer_passes_at_the_second_new_answer() -> None:
    tally = Consistency("v2", required=1)
    assert tally.add("v2", True, "first") is Agreement.PENDING
    assert tally.add("v2", True, "second") is Agreement.PASSED
