"""The AWS Elastic Beanstalk target: two EB environments whose CNAMEs are prod and preprod.

Carries out the release's decisions with boto3: registers a version from its
`Dockerrun.aws.json` (S3 + `CreateApplicationVersion`, `flows.targets.aws.versions`), deploys it
with `UpdateEnvironment`, exchanges the CNAMEs with `SwapEnvironmentCNAMEs`. It also holds the
truth a release relies on:
an exclusive release lock (an S3 object with a renewed lease, `flows.targets.aws.lock`), a
preflight that reads what a release needs (`flows.targets.aws.preflight`), and the traffic EB's
enhanced health counted (`flows.targets.aws.health_metrics`). Every call's failure becomes an
`AwsTargetError` naming the AWS code; every answer is checked before it is believed.
Clients are injected (moto or `Stubber` in tests), or built with the run's credentials
(`flows.targets.aws.clients`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import boto3

from flows.clock import Clock, SystemClock
from flows.config import PipelineConfig, for_target
from flows.targets.aws import facts, preflight
from flows.targets.aws.clients import AwsClients, call, check_ok, make_clients
from flows.targets.aws.errors import (
    AwsBundleUploadError,
    AwsCanaryUnsupported,
    AwsDeployError,
    AwsDescribeError,
    AwsEventsError,
    AwsHealthError,
    AwsResponseError,
    AwsSwapError,
)
from flows.targets.aws.health_metrics import TrafficTally, window_from
from flows.targets.aws.lock import HeldLock, S3ReleaseLock
from flows.targets.aws.versions import ApplicationVersions
from flows.targets.base import Environment, LockHolder, Log, TargetEvent, TrafficCounters
from flows.targets.lease import WallTime

_logger = logging.getLogger(__name__)

ENHANCED_HEALTH_HINT = (
    "turn on enhanced health reporting (option aws:elasticbeanstalk:healthreporting:system "
    "SystemType=enhanced, with the EB service role) and allow elasticbeanstalk:DescribeEnvironmentHealth "
    "(flows/targets/aws/README.md)"
)


def _run_log(line: str) -> None:
    """Log into the current Prefect run if there is one (its UI shows it), else to `logging`."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(line)
    except MissingContextError:
        _logger.info(line)


class ElasticBeanstalkTarget:
    """The `Target` protocol on one EB application with two environments."""

    name = "aws"

    def __init__(
        self,
        config: PipelineConfig,
        clients: AwsClients | boto3.session.Session | None = None,
        *,
        clock: Clock | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """The target on `config` (its unset deadlines take the aws defaults), with injectable I/O."""
        self.config = for_target(config, "aws")
        self.clients = clients if isinstance(clients, AwsClients) else make_clients(config, clients)
        self.clock: Clock = clock or SystemClock()
        self.log: Callable[[str], None] = log or _run_log
        self._bucket: str | None = config.aws.bucket or None
        self.wall = WallTime(self.clock)  # UTC time as `clock` advances it: lease expiry
        self._tallies: dict[str, TrafficTally] = {}
        self._causes: dict[str, tuple[str, ...]] = {}
        self._traffic_lock = threading.Lock()
        self._held: HeldLock | None = None  # the release lock while this target holds it

    # -- facts ---------------------------------------------------------------------------

    def environments(self) -> list[Environment]:
        """Both configured environments as EB describes them now; absent ones are `Missing`."""
        names = list(self.config.environments)
        pages = self.clients.eb.get_paginator("describe_environments").paginate(
            ApplicationName=self.config.application, EnvironmentNames=names, IncludeDeleted=False
        )

        def read_all() -> list[Any]:
            return [env for page in pages for env in page.get("Environments", [])]

        descriptions = [
            d
            for d in call(AwsDescribeError, "DescribeEnvironments", read_all)
            if d.get("ApplicationName") in (None, self.config.application)  # moto ignores the filter
        ]
        return facts.environments_from(descriptions, names)

    def url(self, address: str) -> str:
        """`http://<CNAME>` of the environment holding `address` (prefix fallback if none does).

        A full CNAME is its own answer; a prefix is looked up, since older environments'
        CNAMEs have no region part (`<prefix>.elasticbeanstalk.com`).
        """
        if "." in address:
            return f"http://{address}"
        return facts.url_for(self.environments(), address, self.config.aws.region)

    def events(self, environment: str, since: datetime) -> list[TargetEvent]:
        """The environment's EB events after `since`, oldest first (all pages)."""
        paginator = self.clients.eb.get_paginator("describe_events")
        pages = paginator.paginate(
            ApplicationName=self.config.application,
            EnvironmentName=environment,
            StartTime=facts.as_utc(since),
        )

        def read_all() -> list[Any]:
            return [event for page in pages for event in page.get("Events", [])]

        return facts.events_after(call(AwsEventsError, "DescribeEvents", read_all), since)

    def reconcile(self) -> list[str]:
        """Nothing to remove: Elastic Beanstalk replaces an environment's instances itself."""
        return []

    def preflight(self) -> list[str]:
        """What would stop a release here, found before anything is built; empty when ready.

        Reads only (credentials, the application, both environments and their CNAMEs, the
        bucket); each problem is one line saying what is missing and what to do.
        """
        return preflight.preflight(self.config, self.clients)

    def traffic(self, environment: str) -> TrafficCounters:
        """What `environment` served so far by EB enhanced health, summed over its 10 s windows.

        Each call reads `DescribeEnvironmentHealth`; a window is added once (when `RefreshedAt`
        moved on), so calls at least every window length count every request. `p99_ms` is the
        latest window's. Basic health has no application metrics: `AwsHealthError`.
        """
        answer = call(
            AwsHealthError,
            "DescribeEnvironmentHealth",
            lambda: self.clients.eb.describe_environment_health(
                EnvironmentName=environment, AttributeNames=["All"]
            ),
            hint=ENHANCED_HEALTH_HINT,
        )
        check_ok(answer, "DescribeEnvironmentHealth")
        window = window_from(answer)
        if window is None:
            raise AwsHealthError(
                "DescribeEnvironmentHealth",
                "NoApplicationMetrics",
                f"{environment} reports no application metrics (basic health, or no instance reporting)",
                ENHANCED_HEALTH_HINT,
            )
        with self._traffic_lock:
            tally = self._tallies.get(environment, TrafficTally()).add(window)
            self._tallies[environment] = tally
            if window.causes and window.causes != self._causes.get(environment):
                self.log(f"{environment} enhanced health: " + "; ".join(window.causes))
            self._causes[environment] = window.causes
        return tally.counters()

    @property
    def supports_canary(self) -> bool:
        """False: this target moves all of prod's traffic at once (a CNAME swap)."""
        return False

    def set_traffic_share(self, environment: str, percent: int) -> None:
        """Refused for any share above 0: canary traffic steps are local-only on this version.

        A share of 0 (end a canary) asks for what is always true here, so it does nothing.
        """
        if percent == 0:
            return
        raise AwsCanaryUnsupported(
            "set_traffic_share",
            "CanaryUnsupported",
            f"cannot send {percent}% of prod's traffic to {environment}: canary traffic steps are "
            "local-only on this version (EB's traffic-splitting deployment policy is not used)",
            "leave traffic_steps empty for target=aws; the release swaps the CNAMEs at once and "
            "verifies prod, swapping back on failure",
        )

    # -- the release lock ----------------------------------------------------------------

    def lock(self, holder: LockHolder, wait_s: float, log: Log) -> AbstractContextManager[LockHolder | None]:
        """Hold the application's release lock for the block (shared by every pipeline instance).

        The lock is `s3://<bucket>/<bundle_prefix>locks/<application>.json`, taken with a
        conditional put, renewed every `aws.lock_renew` seconds while the block runs, taken over
        by another run once its `aws.lock_lease` has expired, and removed at the end if still ours.
        Waits up to `wait_s` (logging the holder), then `AwsLockHeld` names the holder.
        """
        return self._holding(holder, wait_s, log)

    @contextmanager
    def _holding(self, holder: LockHolder, wait_s: float, log: Log) -> Iterator[LockHolder | None]:
        with self.release_lock().hold(holder, wait_s, log) as held:
            self._held = held
            try:
                yield held.interrupted
            finally:
                self._held = None

    def _check_lock(self, action: str) -> None:
        """Before changing the environments: the release lock, if held, must still be ours."""
        if self._held is not None:
            self._held.check(action)

    def release_lock(self) -> S3ReleaseLock:
        """The release lock object of this application (in the bundle bucket)."""
        return S3ReleaseLock(
            self.clients.s3,
            self.bucket(),
            facts.lock_key(self.config),
            self.config.aws,
            poll_s=self.config.deadlines.poll_s,
            clock=self.clock,
            wall=self.wall,
        )

    # -- actions -------------------------------------------------------------------------

    def register_version(self, version: str, bundle: dict[str, Any]) -> None:
        """Make `version` deployable from its rendered bundle; an existing identical version is reused.

        See `flows.targets.aws.versions.ApplicationVersions.register`.
        """
        ApplicationVersions(self.config, self.clients, self.clock, self.log).register(
            version, bundle, self.bucket
        )

    def deploy(self, environment: str, version: str) -> None:
        """Start deploying a registered version to `environment` (returns while it updates)."""
        self._check_lock(f"deploying {version} to {environment}")
        response = call(
            AwsDeployError,
            "UpdateEnvironment",
            lambda: self.clients.eb.update_environment(
                ApplicationName=self.config.application, EnvironmentName=environment, VersionLabel=version
            ),
            hint=f"{environment} keeps the version it ran",
        )
        check_ok(response, "UpdateEnvironment")
        if response.get("EnvironmentName") != environment:
            raise AwsResponseError(
                "UpdateEnvironment",
                "",
                f"EB answered for {response.get('EnvironmentName')!r}, not {environment!r}",
                "check the environment names in the configuration",
            )
        self.log(f"deploying {version} to {environment}: {response.get('Status', '?')}")

    def swap(self, first: str, second: str) -> None:
        """Exchange the CNAMEs of two environments (EB does it in one step).

        EB refuses unless both are Ready ("... Must be Ready."); `environments()` reports EB's
        own Status, so the release waits until both are settled before it calls this.
        """
        self._check_lock(f"swapping the CNAMEs of {first} and {second}")
        response = call(
            AwsSwapError,
            "SwapEnvironmentCNAMEs",
            lambda: self.clients.eb.swap_environment_cnames(
                SourceEnvironmentName=first, DestinationEnvironmentName=second
            ),
            hint=f"the CNAMEs were not swapped: prod is unchanged ({first} and {second} keep theirs)",
        )
        check_ok(response, "SwapEnvironmentCNAMEs")
        self.log(f"swapped the CNAMEs of {first} and {second}")

    # -- helpers -------------------------------------------------------------------------

    def bucket(self) -> str:
        """The bundle bucket: `aws.bucket`, or EB's own storage bucket (created by EB on demand)."""
        if self._bucket is None:
            response = call(
                AwsBundleUploadError,
                "CreateStorageLocation",
                self.clients.eb.create_storage_location,
                hint="or set aws.bucket to a bucket in the application's region",
            )
            check_ok(response, "CreateStorageLocation")
            bucket = response.get("S3Bucket")
            if not bucket:
                raise AwsResponseError(
                    "CreateStorageLocation", "", "EB named no bucket", "set aws.bucket in the configuration"
                )
            self._bucket = bucket
        return self._bucket
