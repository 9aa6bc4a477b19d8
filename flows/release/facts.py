"""Reading the target for a release: who is prod and preprod, one environment, what stops a release.

`Log` is where an operation says what it does (the run's logger, a CLI's print); `quiet` says nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flows.config import PipelineConfig
from flows.release.decisions import Roles, assign_roles
from flows.release.errors import PreflightFailed, UnknownEnvironment
from flows.targets.base import Environment, Target

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A `Log` that says nothing."""
    return None


def find_roles(target: Target, config: PipelineConfig) -> Roles:
    """Which environment holds prod and which preprod, by address (never by a fixed name)."""
    return assign_roles(target.environments(), config.prod_address, config.preprod_address)


def environment_named(target: Target, name: str) -> Environment:
    """The environment called `name` as the target reports it now."""
    for environment in target.environments():
        if environment.name == name:
            return environment
    raise UnknownEnvironment(f"the target reports no environment named {name!r}; check the configuration")


def preflight(target: Target) -> None:
    """Fail before anything is built when the target reports what would stop the release."""
    problems = target.preflight()
    if problems:
        listed = "; ".join(problems)
        raise PreflightFailed(f"the {target.name} target is not ready for a release: {listed}")
