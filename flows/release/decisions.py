"""Pure decisions of a blue/green release: which environment is preprod, is it ready, what to swap.

No I/O here: every function takes the facts a target reported and returns a decision, so the
rules are tested without Docker or AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from flows.release.errors import DecisionError
from flows.targets.addresses import holds_address
from flows.targets.base import GREEN, GREY, LAUNCHING, MISSING, READY, RED, UPDATING, Environment


def pick_by_address(environments: Sequence[Environment], address: str) -> Environment:
    """The one environment holding `address`; never chosen by a fixed name."""
    holders = [env for env in environments if holds_address(env, address)]
    if not holders:
        seen = ", ".join(f"{env.name}={env.address or '-'}" for env in environments) or "none"
        raise DecisionError(
            f"no environment holds the address {address!r} (environments: {seen}); "
            "check the target's address configuration or run `deliverypipeline <target> status`"
        )
    if len(holders) > 1:
        names = ", ".join(env.name for env in holders)
        raise DecisionError(f"several environments hold the address {address!r}: {names}")
    return holders[0]


@dataclass(frozen=True)
class Roles:
    """Which environment is prod and which is preprod right now."""

    prod: Environment
    preprod: Environment


def assign_roles(environments: Sequence[Environment], prod_address: str, preprod_address: str) -> Roles:
    """Split the two environments into prod and preprod by the addresses they hold."""
    prod = pick_by_address(environments, prod_address)
    preprod = pick_by_address(environments, preprod_address)
    if prod.name == preprod.name:
        raise DecisionError(f"environment {prod.name!r} holds both the prod and preprod address")
    return Roles(prod=prod, preprod=preprod)


class Readiness(Enum):
    """Where a deployment stands."""

    READY = "ready"  # Ready, accepted health, running the expected version
    WAITING = "waiting"  # still updating, or not yet on the expected version
    FAILED = "failed"  # settled on an unacceptable health


def readiness(
    environment: Environment, expected_version: str | None, accepted_health: Iterable[str]
) -> Readiness:
    """Judge one environment against the version it should run and the healths accepted.

    With `expected_version=None` only status and health count (used before deploying).
    """
    accepted = set(accepted_health)
    if environment.status != READY:
        return Readiness.WAITING
    if expected_version is not None and environment.version != expected_version:
        return Readiness.WAITING
    if environment.health in accepted:
        return Readiness.READY
    if environment.health == GREY:  # health not known yet (EB reports Grey while it gathers it)
        return Readiness.WAITING
    return Readiness.FAILED


# Elastic Beanstalk refuses a deploy or swap while an environment is in any of these.
BUSY_STATUSES = frozenset({UPDATING, LAUNCHING, "Terminating", "Aborting", "LinkingFrom", "LinkingTo"})


def settled(environment: Environment) -> bool:
    """Whether no operation is under way on an environment (deployable, swappable).

    An environment with nothing deployed yet (`Missing` on the local target) is settled:
    the first release deploys into it.
    """
    return environment.status not in BUSY_STATUSES


def describe(environment: Environment) -> str:
    """One line about an environment for logs and error messages."""
    return (
        f"{environment.name} at {environment.address or '-'}: version {environment.version or '-'}, "
        f"status {environment.status}, health {environment.health}"
    )


def already_live(roles: Roles, version: str, accepted_health: Iterable[str] = (GREEN,)) -> bool:
    """Whether prod already serves `version` healthily, making the release a quick success."""
    return (
        roles.prod.version == version
        and roles.prod.status == READY
        and roles.prod.health in set(accepted_health)
    )


def swap_pair(roles: Roles) -> tuple[str, str]:
    """The two environment names whose addresses the swap exchanges, preprod first."""
    return (roles.preprod.name, roles.prod.name)


def swappable(environment: Environment) -> bool:
    """Whether an address swap may include this environment now.

    Elastic Beanstalk swaps only Ready environments ("... Must be Ready."); a local environment
    with nothing deployed yet (Missing) can take an address too.
    """
    return environment.status in (READY, MISSING)


def prod_serving(roles: Roles) -> bool:
    """Whether prod serves something a user could lose during the release (probe it then).

    A prod that is down (health Red: its container stopped or fails its checks) already fails its
    users; the release replaces it, and its failures are not the release's.
    """
    return roles.prod.version is not None and roles.prod.status == READY and roles.prod.health != RED


def preprod_already_on(roles: Roles, version: str, accepted_health: Iterable[str]) -> bool:
    """Whether preprod already runs `version` healthily (a re-run after a failed prod check)."""
    return readiness(roles.preprod, version, accepted_health) is Readiness.READY


class Agreement(Enum):
    """Where a verification of one address stands."""

    PENDING = "pending"  # the new version has not answered yet, or not often enough
    PASSED = "passed"  # the new version answered, then `required` more times in a row
    FAILED = "failed"  # after the new version answered, something else did


@dataclass
class Consistency:
    """Counts answers of one address until they consistently show the expected version.

    Before the new version first answers, other answers are tolerated (a CNAME swap reaches
    DNS caches gradually); once it has answered, `required` more answers must agree, and any
    other version or failure means users are served inconsistently: the verification fails.
    """

    expected: str
    required: int
    agreed: int = 0
    first_seen: bool = False
    reason: str = ""

    def add(self, version: str | None, ok: bool, detail: str) -> Agreement:
        """Count one answer (`version` reported, `ok` whether it was a good answer)."""
        if ok and version == self.expected:
            if self.first_seen:
                self.agreed += 1
            self.first_seen = True
            return Agreement.PASSED if self.agreed >= self.required else Agreement.PENDING
        if self.first_seen:
            self.reason = (
                f"after {self.expected} answered, an answer showed {version or 'no version'} ({detail}): "
                "two versions, or a failing one, behind one address"
            )
            return Agreement.FAILED
        return Agreement.PENDING


def swap_happened(before: Roles, now: Roles) -> bool:
    """Whether the addresses were exchanged since `before`: preprod's environment now holds prod."""
    return now.prod.name == before.preprod.name


RELEASE_OPERATION = "release "  # a release's lock holder: `release <version>`


def release_operation(version: str) -> str:
    """The lock holder's operation for a release of `version`."""
    return f"{RELEASE_OPERATION}{version}"


def unfinished_swap(roles: Roles, operation: str) -> bool:
    """Whether a release that died holding the lock (`operation`) had swapped its version onto prod.

    Then prod runs the interrupted version, never fully verified and analysed, while preprod still
    runs the previous one: the swap must be undone before anything else.
    """
    if not operation.startswith(RELEASE_OPERATION):
        return False
    version = operation.removeprefix(RELEASE_OPERATION)
    return roles.prod.version == version and roles.preprod.version not in (None, version)
