"""Whole releases on Elastic Beanstalk, EB answered by `Stubber`: each asserts what happened to prod.

The steps are the pipeline's own (the operations of `flows.release`, in the flow's order) on
`ElasticBeanstalkTarget`; EB's answers are queued in the order a release asks (the swap first
waits until both environments are Ready, so a describe answer precedes each swap), the HTTP side
is `EbWorld.check`, and time is a fake clock. The target's lock, preflight and traffic are
tested in their own modules. After each scenario: which environment answers at the prod CNAME, what it serves,
which calls were made, and that no queued answer was left unused.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from flows.config import Deadlines
from flows.errors import ReleaseError
from flows.release.decisions import Roles
from flows.release.errors import DeploymentFailed, NotReadyInTime, ProdRejected, SwappedBack
from flows.release.health import PathAnswer, PathCheck
from flows.release.settings import UserPath
from flows.release.swap import swap, swap_back
from flows.release.verify import require, verify
from flows.release.waits import deploy, wait_for_preprod, wait_until_ready
from flows.targets.aws.errors import AwsSwapError
from flows.targets.aws.facts import render_bundle
from tests.flows.targets.aws.eb_world import (
    NODE_1,
    NODE_2,
    PREPROD_CNAME,
    PROD_CNAME,
    EbWorld,
    aws_config,
    dockerrun,
)

PULLED = "Successfully pulled 123456789012.dkr.ecr.eu-west-1.amazonaws.com/deliverypipeline:v2"


def queue_registration(world: EbWorld, version: str) -> None:
    """A new version: absent, uploaded, created, processed after one more look."""
    world.version_answer(version, None)
    world.upload(version)
    world.create_version(version)
    world.version_answer(version, "Processing")
    world.version_answer(version, "Processed")


def queue_deploy_to_node_2(world: EbWorld, version: str) -> None:
    """Preprod (node-2) free, updated, Ready and Green on `version` at the second look."""
    world.describe(node_2={"status": "Ready", "health": "Green"})
    world.update(NODE_2, version)
    world.events(NODE_2, ("INFO", "Environment update is starting."))
    world.describe()
    world.events(
        NODE_2,
        ("INFO", "Deploying new version to instance(s)."),
        ("INFO", PULLED),
        ("INFO", "New application version was deployed to running EC2 instances."),
        ("INFO", "Environment update completed successfully."),
    )
    world.describe(node_2={"status": "Ready", "health": "Green", "version": version})


def paths_check(world: EbWorld) -> PathCheck:
    """The user paths as clients reach them now: each answers what `/health` would (502 when broken)."""

    def check(url: str, paths: Sequence[UserPath]) -> list[PathAnswer]:
        report = world.check(url)
        error = report.error if report.status_code is None else None
        return [PathAnswer(path, report.status_code, 0.01, error) for path in paths]

    return check


def queue_swap(world: EbWorld, first: str, second: str) -> None:
    """Both Ready (swappable) at the first look, the CNAME swap, both settled at the next look."""
    world.describe()
    world.swap(first, second)
    world.describe()


def run_release(world: EbWorld, version: str) -> Roles:
    """The pipeline's release steps, in the flow's order, on the EB target (swap back on rejection)."""
    target, config, log, clock = world.target(), world.config, world.log.append, world.clock
    paths = paths_check(world)
    target.register_version(version, dockerrun(version))
    roles = wait_for_preprod(target, config, log=log, clock=clock)
    since = deploy(target, roles, version, config, log)
    wait_until_ready(
        target, roles.preprod.name, version, config, since=since, log=log, clock=clock, check=world.check
    )
    preprod_url = target.url(config.preprod_address)
    require(verify(preprod_url, version, config, clock, world.check, paths), "preprod")
    after = swap(target, config, log, clock)
    try:
        prod_url = target.url(config.prod_address)
        verified = verify(prod_url, version, config, clock, world.check, paths)
        require(verified, "prod", ProdRejected)
    except Exception as rejected:
        swap_back(target, roles, rejected, config, log, clock)
    return after


DEPLOY_CALLS = [
    "DescribeEnvironments",
    "UpdateEnvironment",
    "DescribeEvents",
    "DescribeEnvironments",
    "DescribeEvents",
    "DescribeEnvironments",
]
REGISTER_CALLS = [
    "DescribeApplicationVersions",
    "PutObject",
    "CreateApplicationVersion",
    "DescribeApplicationVersions",
    "DescribeApplicationVersions",
]


def test_happy_path_puts_the_new_version_behind_the_prod_cname() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL looked up
    queue_swap(world, NODE_2, NODE_1)
    world.describe()  # the prod URL looked up

    after = run_release(world, "v2")

    assert after.prod.name == NODE_2 and after.prod.version == "v2"
    assert world.behind(PROD_CNAME) == NODE_2 and world.check(f"http://{PROD_CNAME}").version == "v2"
    assert world.behind(PREPROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"  # the rollback target
    assert world.operations() == [
        *REGISTER_CALLS,
        *DEPLOY_CALLS,
        "DescribeEnvironments",  # the preprod URL
        "DescribeEnvironments",  # both Ready: swappable
        "SwapEnvironmentCNAMEs",
        "DescribeEnvironments",  # settled, node-2 on the prod CNAME
        "DescribeEnvironments",  # the prod URL
    ]
    assert any(PULLED in line for line in world.log)  # EB's events were streamed into the log
    world.done()


def test_busy_preprod_is_waited_for_then_released() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    world.describe(node_2={"status": "Updating", "health": "Grey"})  # someone else's update
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL
    queue_swap(world, NODE_2, NODE_1)
    world.describe()  # the prod URL

    after = run_release(world, "v2")

    assert after.prod.name == NODE_2
    assert world.behind(PROD_CNAME) == NODE_2 and world.check(f"http://{PROD_CNAME}").version == "v2"
    assert any("preprod is busy" in line for line in world.log)
    assert world.operations().count("UpdateEnvironment") == 1
    assert world.clock.time >= world.config.deadlines.poll_s  # it did wait
    world.done()


def test_error_event_during_the_update_fails_and_prod_keeps_serving() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    world.describe()
    world.update(NODE_2, "v2")
    world.events(
        NODE_2,
        ("INFO", "Environment update is starting."),
        ("INFO", "Deploying new version to instance(s)."),
        (
            "ERROR",
            "Failed to pull Docker image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/deliverypipeline:v2",
        ),
        ("ERROR", "[Instance: i-0a1b2c3d4e5f67890] Command failed on instance. Return code: 1."),
    )

    with pytest.raises(DeploymentFailed, match="Failed to pull Docker image") as failure:
        run_release(world, "v2")

    assert "prod was not touched" in str(failure.value)
    assert world.behind(PROD_CNAME) == NODE_1 and world.check(f"http://{PROD_CNAME}").version == "v1"
    assert "SwapEnvironmentCNAMEs" not in world.operations()
    assert world.operations()[-1] == "DescribeEvents"  # failed at the first event look
    world.done()


def test_health_red_fails_the_release_without_swapping() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    world.describe()
    world.update(NODE_2, "v2")
    world.events(
        NODE_2,
        ("INFO", "Environment update is starting."),
        ("WARN", "Environment health has transitioned from Ok to Severe. 100.0 % of the requests failing."),
    )
    world.describe(node_2={"status": "Ready", "health": "Red", "version": "v2"})

    with pytest.raises(DeploymentFailed, match="health Red"):
        run_release(world, "v2")

    assert world.behind(PROD_CNAME) == NODE_1 and world.check(f"http://{PROD_CNAME}").version == "v1"
    assert "SwapEnvironmentCNAMEs" not in world.operations()
    world.done()


def test_deadline_passing_names_what_was_last_seen_and_leaves_prod() -> None:
    config = aws_config(deadlines=Deadlines(ready=30, poll_interval=10))
    world = EbWorld(config)
    queue_registration(world, "v2")
    world.describe()
    world.update(NODE_2, "v2")
    for _ in range(4):  # looks at 0, 10, 20 and 30 s: still Updating
        world.events(NODE_2, ("INFO", "Deploying new version to instance(s)."))
        world.describe()

    with pytest.raises(NotReadyInTime, match="within 30s") as failure:
        run_release(world, "v2")

    assert "status Updating" in str(failure.value) and NODE_2 in str(failure.value)
    assert world.clock.time == 5 + 30  # one 5 s look at the version, then the 30 s deadline
    assert world.behind(PROD_CNAME) == NODE_1 and world.check(f"http://{PROD_CNAME}").version == "v1"
    assert "SwapEnvironmentCNAMEs" not in world.operations()
    world.done()


def test_existing_version_is_reused_and_released() -> None:
    world = EbWorld()
    world.version_answer("v2", "Processed")  # a re-run: the version exists
    world.stored_bundle("v2", render_bundle(dockerrun("v2")))  # with this very bundle
    world.version_answer("v2", "Processed")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL
    queue_swap(world, NODE_2, NODE_1)
    world.describe()  # the prod URL

    after = run_release(world, "v2")

    assert after.prod.name == NODE_2
    assert world.behind(PROD_CNAME) == NODE_2 and world.check(f"http://{PROD_CNAME}").version == "v2"
    assert "CreateApplicationVersion" not in world.operations()
    assert "PutObject" not in world.operations()  # the existing bundle was not overwritten
    assert world.operations()[:3] == [
        "DescribeApplicationVersions",
        "GetObject",
        "DescribeApplicationVersions",
    ]
    assert any("reusing" in line for line in world.log)
    world.done()


def test_prod_failing_verification_is_swapped_back() -> None:
    world = EbWorld()
    world.dns_lag = True  # clients keep reaching the old environment at the prod CNAME
    queue_registration(world, "v2")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL: preprod serves v2, the release goes on
    queue_swap(world, NODE_2, NODE_1)
    world.describe()  # the prod URL looked up
    queue_swap(world, NODE_1, NODE_2)  # the swap back, once both are Ready

    with pytest.raises(SwappedBack, match="swapped back") as failure:
        run_release(world, "v2")

    assert f"swapped back: prod is {NODE_1}" in str(failure.value)
    assert "prod does not serve v2 to users: last answer:" in str(failure.value)  # why, with what was seen
    assert world.behind(PROD_CNAME) == NODE_1 and world.serving[NODE_1] == "v1"
    assert world.behind(PREPROD_CNAME) == NODE_2
    swaps = [params for name, params in world.calls if name == "SwapEnvironmentCNAMEs"]
    assert swaps == [
        {"SourceEnvironmentName": NODE_2, "DestinationEnvironmentName": NODE_1},
        {"SourceEnvironmentName": NODE_1, "DestinationEnvironmentName": NODE_2},
    ]
    assert world.clock.time >= world.config.deadlines.verify  # verified across the whole DNS window
    world.done()


def test_refused_swap_surfaces_the_aws_error_and_prod_is_unchanged() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL
    world.describe()  # both Ready: EB refuses anyway (another operation began meanwhile)
    message = (
        "Environment named deliverypipeline-node-1 is in an invalid state for this operation. Must be Ready."
    )
    world.swap_refused(NODE_2, NODE_1, "InvalidParameterValue", message)

    with pytest.raises(AwsSwapError) as failure:
        run_release(world, "v2")

    error = failure.value
    assert error.code == "InvalidParameterValue" and error.aws_message == message
    assert "prod is unchanged" in str(error) and "wait for it" in str(error)
    assert world.failed_calls == [("SwapEnvironmentCNAMEs", "InvalidParameterValue")]
    assert world.behind(PROD_CNAME) == NODE_1 and world.check(f"http://{PROD_CNAME}").version == "v1"
    assert world.operations()[-1] == "DescribeEnvironments"  # nothing after the refused swap
    world.done()


def test_the_swap_waits_until_both_environments_are_ready() -> None:
    world = EbWorld()
    queue_registration(world, "v2")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL
    world.describe(node_1={"status": "Updating"})  # prod busy (a configuration change): EB would refuse
    world.describe(node_1={"status": "Ready"})
    world.swap(NODE_2, NODE_1)
    world.describe()
    world.describe()  # the prod URL

    after = run_release(world, "v2")

    assert after.prod.name == NODE_2 and world.behind(PROD_CNAME) == NODE_2
    assert any("waiting for both environments to be swappable" in line for line in world.log)
    assert world.failed_calls == []  # never asked EB to swap a busy environment
    swap_at = world.operations().index("SwapEnvironmentCNAMEs")
    assert world.operations()[swap_at - 2 : swap_at] == ["DescribeEnvironments", "DescribeEnvironments"]
    world.done()


def test_an_environment_never_ready_for_the_swap_fails_naming_it_and_prod_is_unchanged() -> None:
    world = EbWorld(aws_config(deadlines=Deadlines(swap=30, poll_interval=10)))
    queue_registration(world, "v2")
    queue_deploy_to_node_2(world, "v2")
    world.describe()  # the preprod URL
    for _ in range(4):  # looks at 0, 10, 20 and 30 s: prod still Updating
        world.describe(node_1={"status": "Updating", "health": "Grey"})

    with pytest.raises(ReleaseError, match="waited 30s before the swap") as failure:
        run_release(world, "v2")

    assert f"prod is {NODE_1} at {PROD_CNAME}: version v1, status Updating" in str(failure.value)
    assert "swap by hand" in str(failure.value)
    assert "SwapEnvironmentCNAMEs" not in world.operations()
    assert world.behind(PROD_CNAME) == NODE_1 and world.check(f"http://{PROD_CNAME}").version == "v1"
    world.done()
