"""Pure translations of EB answers and configuration: environments, events, keys, URLs, ECR hosts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from flows.targets.aws import facts
from flows.targets.base import MISSING, Environment
from tests.flows.targets.aws.eb_world import NODE_1, NODE_2, PROD_CNAME, EnvState, aws_config, dockerrun


def test_environments_keep_configured_order_and_fill_missing() -> None:
    described = [EnvState(NODE_2, "x.elasticbeanstalk.com", "v3").description()]
    envs = facts.environments_from(described, [NODE_1, NODE_2])
    assert [(e.name, e.status) for e in envs] == [(NODE_1, MISSING), (NODE_2, "Ready")]


def test_other_environments_are_ignored_and_a_live_one_beats_a_terminated_one() -> None:
    terminated = EnvState(NODE_1, "old.elasticbeanstalk.com", "v0", status="Terminated").description()
    live = EnvState(NODE_1, PROD_CNAME, "v1").description()
    stranger = EnvState("someone-else", "y.elasticbeanstalk.com", "v9").description()
    for order in ([terminated, live, stranger], [live, terminated, stranger]):
        (node_1,) = facts.environments_from(order, [NODE_1])
        assert (node_1.address, node_1.status) == (PROD_CNAME, "Ready")


def test_only_terminated_counts_as_missing() -> None:
    terminated = EnvState(NODE_1, PROD_CNAME, "v0", status="Terminated").description()
    assert facts.environments_from([terminated], [NODE_1])[0].status == MISSING


def test_moto_style_description_without_cname_or_health() -> None:
    env = facts.environment_from(
        {"EnvironmentName": NODE_1, "VersionLabel": "1", "Status": "Ready", "CNAME": ""}
    )
    assert (env.address, env.version, env.health) == ("", "1", "Grey")


def test_events_after_since_oldest_first_in_utc() -> None:
    since = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    described = [
        {"EventDate": datetime(2026, 11, 27, 11, 0, 5, tzinfo=cet), "Message": "b", "Severity": "WARN"},
        {"EventDate": since + timedelta(seconds=2), "Message": "c"},
        {"EventDate": since, "Message": "at since"},
        {"EventDate": since - timedelta(seconds=1), "Message": "before"},
    ]
    events = facts.events_after(described, since.replace(tzinfo=None))  # naive = UTC
    assert [(e.message, e.severity) for e in events] == [("c", "INFO"), ("b", "WARN")]
    assert events[1].time == since + timedelta(seconds=5)


def test_bundle_key_is_derived_from_the_version() -> None:
    assert facts.bundle_key(aws_config(), "1.4.0-g1a2b3c4") == (
        "deliverypipeline/deliverypipeline/1.4.0-g1a2b3c4/Dockerrun.aws.json"
    )


@pytest.mark.parametrize("label", ["", "../v2", "v2/../../x", "a b", "x" * 101])
def test_unusable_version_labels_are_refused(label: str) -> None:
    with pytest.raises(ValueError, match="not usable"):
        facts.bundle_key(aws_config(), label)


def test_rendered_bundles_are_stable_and_compared_by_content() -> None:
    rendered = facts.render_bundle(dockerrun("v2"))
    assert rendered == facts.render_bundle(dict(reversed(list(dockerrun("v2").items()))))
    assert facts.same_bundle(b'{"AWSEBDockerrunVersion":"1"}', {"AWSEBDockerrunVersion": "1"})
    assert not facts.same_bundle(rendered, dockerrun("v3"))
    assert not facts.same_bundle(b"not json", dockerrun("v2"))


def test_url_for_a_prefix_uses_the_cname_of_its_holder() -> None:
    legacy = Environment(NODE_1, "deliverypipeline-prod.elasticbeanstalk.com", "v1", "Ready", "Green")
    assert facts.url_for([legacy], "deliverypipeline-prod", "eu-west-1") == (
        "http://deliverypipeline-prod.elasticbeanstalk.com"
    )
    assert facts.url_for([], "deliverypipeline-prod", "eu-west-1") == f"http://{PROD_CNAME}"


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "eu-west-1"),
        ),
        (
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/team",
            ("123456789012.dkr.ecr.us-east-2.amazonaws.com", "us-east-2"),
        ),
        ("127.0.0.1:5000", None),
        ("registry.example.org", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.org", None),
    ],
)
def test_ecr_registries_are_recognised_by_host(registry: str, expected: tuple[str, str] | None) -> None:
    assert facts.ecr_registry(registry) == expected
