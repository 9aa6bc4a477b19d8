"""Pure translations between Elastic Beanstalk's answers and the target's facts.

No boto3 here: these functions take the dictionaries EB returns (or the configuration) and
give `Environment`s, `TargetEvent`s, S3 keys and URLs, so they are tested without AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flows.config import PipelineConfig
from flows.targets.addresses import holds_address
from flows.targets.base import GREY, MISSING, TERMINATED, Environment, TargetEvent

BUNDLE_FILE = "Dockerrun.aws.json"
_TERMINAL = frozenset({TERMINATED, "Terminating"})
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def environment_from(description: Mapping[str, Any]) -> Environment:
    """One EB `EnvironmentDescription` as an `Environment` (address = the CNAME)."""
    version = description.get("VersionLabel")
    return Environment(
        name=str(description["EnvironmentName"]),
        address=str(description.get("CNAME") or ""),
        version=str(version) if version not in (None, "") else None,
        status=str(description.get("Status") or MISSING),
        health=str(description.get("Health") or GREY),
        details={
            "id": description.get("EnvironmentId"),
            "health_status": description.get("HealthStatus"),
            "updated": description.get("DateUpdated"),
            "abortable_operation": description.get("AbortableOperationInProgress"),
        },
    )


def missing_environment(name: str) -> Environment:
    """The fact that an environment does not exist (or was terminated)."""
    return Environment(name=name, address="", version=None, status=MISSING, health=GREY)


def environments_from(descriptions: Iterable[Mapping[str, Any]], names: Sequence[str]) -> list[Environment]:
    """The configured environments, in configured order, from whatever EB described.

    Filters by name (moto ignores `EnvironmentNames`), prefers a live environment over a
    terminated one of the same name, and reports an absent one as `Missing`.
    """
    found: dict[str, Environment] = {}
    for description in descriptions:
        env = environment_from(description)
        if env.name not in names:
            continue
        if env.status in _TERMINAL and env.name in found:
            continue
        found[env.name] = env
    return [
        found[name] if name in found and found[name].status != TERMINATED else missing_environment(name)
        for name in names
    ]


def event_from(description: Mapping[str, Any]) -> TargetEvent:
    """One EB `EventDescription` as a `TargetEvent` (times in UTC)."""
    return TargetEvent(
        time=as_utc(description["EventDate"]),
        environment=str(description.get("EnvironmentName") or ""),
        severity=str(description.get("Severity") or "INFO"),
        message=str(description.get("Message") or ""),
    )


def events_after(descriptions: Iterable[Mapping[str, Any]], since: datetime) -> list[TargetEvent]:
    """Events strictly after `since`, oldest first (EB lists newest first, `StartTime` inclusive)."""
    cutoff = as_utc(since)
    events = [event_from(d) for d in descriptions]
    return sorted((e for e in events if e.time > cutoff), key=lambda e: e.time)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_version_label(version: str) -> str:
    """The version label if EB and S3 accept it as is (it is also part of the bundle's key)."""
    if not _LABEL.match(version):
        raise ValueError(
            f"version label {version!r} is not usable: 1-100 characters, letters, digits, '.', '_', '+', '-'"
        )
    return version


def bundle_key(config: PipelineConfig, version: str) -> str:
    """Where a version's bundle lives in the bucket: one key per application and version."""
    return f"{config.aws.bundle_prefix}{config.application}/{check_version_label(version)}/{BUNDLE_FILE}"


def render_bundle(bundle: Mapping[str, Any]) -> bytes:
    """The bundle as stored: stable JSON, so the same bundle always gives the same bytes."""
    return (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode()


def same_bundle(stored: bytes, bundle: Mapping[str, Any]) -> bool:
    """Whether a stored Dockerrun.aws.json says the same as `bundle` (formatting aside)."""
    try:
        return bool(json.loads(stored) == json.loads(render_bundle(bundle)))
    except ValueError:
        return False


def default_cname(prefix: str, region: str) -> str:
    """The CNAME EB gives a prefix in a region."""
    return f"{prefix}.{region}.elasticbeanstalk.com"


def url_for(environments: Sequence[Environment], address: str, region: str) -> str:
    """`http://<CNAME>` of the environment holding `address` (a prefix or a full CNAME).

    When no environment holds it (yet), the CNAME EB would give the prefix.
    """
    for env in environments:
        if holds_address(env, address):
            return f"http://{env.address}"
    if "." in address:
        return f"http://{address}"
    return f"http://{default_cname(address, region)}"


def ecr_registry(registry: str) -> tuple[str, str] | None:
    """(host, region) when `registry` (host[:port][/path]) is an ECR registry, else None."""
    host = registry.split("/", 1)[0].split(":", 1)[0].lower()
    match = _ECR_HOST.match(host)
    if match is None:
        return None
    return host, match.group("region")


def lock_key(config: PipelineConfig) -> str:
    """Where the application's release lock lives in the bucket (beside its bundles)."""
    return f"{config.aws.bundle_prefix}locks/{config.application}.json"
