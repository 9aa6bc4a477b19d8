"""Application versions: a release's bundle uploaded and registered once, an identical one reused."""

from __future__ import annotations

import json

import pytest

from flows.targets.aws.errors import AwsVersionConflict, AwsVersionError
from flows.targets.aws.facts import render_bundle
from flows.targets.aws.versions import ApplicationVersions
from tests.flows.targets.aws.eb_world import BUCKET, EbWorld, aws_config, dockerrun


class World(EbWorld):
    """EB's answers, and how often the bundle bucket was asked for."""

    buckets_asked = 0

    def bucket_of(self) -> str:
        self.buckets_asked += 1
        return BUCKET


def creation_queued(world: EbWorld, version: str = "v2") -> None:
    """EB's answers up to the creation of a new version: not there yet, bundle uploaded, created."""
    world.version_answer(version, None)
    world.upload(version)
    world.create_version(version)


def creation_refused(world: EbWorld, code: str, message: str) -> None:
    """EB's answers up to a refused creation of v2: not there yet, bundle uploaded, `code` refused."""
    world.version_answer("v2", None)
    world.upload("v2")
    world.eb.add_client_error("create_application_version", service_error_code=code, service_message=message)


def versions(world: EbWorld) -> ApplicationVersions:
    return ApplicationVersions(world.config, world.clients, world.clock, world.log.append)


def test_an_identical_existing_version_is_reused_without_asking_for_a_bucket() -> None:
    world = World()
    world.version_answer("v2", "Processed")
    world.stored_bundle("v2", render_bundle(dockerrun("v2")))
    world.version_answer("v2", "Processed")

    versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert world.buckets_asked == 0
    assert world.operations() == ["DescribeApplicationVersions", "GetObject", "DescribeApplicationVersions"]
    assert any("already exists with the same bundle" in line for line in world.log)
    world.done()


def test_register_uploads_the_bundle_under_a_key_derived_from_the_version() -> None:
    world = World()
    creation_queued(world)
    world.version_answer("v2", "Processed")

    versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    (_, put), (_, create) = world.calls[1], world.calls[2]
    assert put["Key"] == "deliverypipeline/deliverypipeline/v2/Dockerrun.aws.json"
    assert json.loads(put["Body"]) == dockerrun("v2")
    assert create["SourceBundle"] == {"S3Bucket": BUCKET, "S3Key": put["Key"]} and create["Process"] is True
    world.done()


def test_register_fails_when_eb_fails_processing_the_version() -> None:
    world = World()
    creation_queued(world)
    world.version_answer("v2", "Processing")
    world.version_answer("v2", "Failed")

    with pytest.raises(AwsVersionError, match="v2 failed processing") as failure:
        versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert "Dockerrun.aws.json" in str(failure.value)
    world.done()


def test_register_gives_up_at_its_deadline() -> None:
    world = World(
        aws_config().model_copy(
            update={"aws": aws_config().aws.model_copy(update={"version_processing": 10})}
        )
    )
    creation_queued(world)
    for _ in range(3):  # at 0, 5 and 10 s
        world.version_answer("v2", "Processing")

    with pytest.raises(AwsVersionError, match="still Processing after 10 s"):
        versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert world.clock.time == 10
    world.done()


def test_an_existing_version_with_another_key_is_a_conflict_not_a_reuse() -> None:
    world = World()
    world.version_answer("v2", "Processed", key="manual-uploads/v2.json")

    with pytest.raises(AwsVersionConflict, match=r"manual-uploads/v2\.json") as failure:
        versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert "delete-application-version" in str(failure.value)
    assert world.operations() == ["DescribeApplicationVersions"]  # nothing uploaded over it
    world.done()


def test_an_existing_version_with_another_bundle_is_a_conflict() -> None:
    world = World()
    world.version_answer("v2", "Processed")
    world.stored_bundle("v2", render_bundle(dockerrun("v2-other-build")))

    with pytest.raises(AwsVersionConflict, match="differs from this build's"):
        versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert "PutObject" not in world.operations()
    world.done()


def test_a_version_created_meanwhile_by_another_run_is_reused() -> None:
    world = World()
    creation_refused(world, "InvalidParameterValue", "Application Version v2 already exists.")
    world.version_answer("v2", "Processing")
    world.stored_bundle("v2", render_bundle(dockerrun("v2")))
    world.version_answer("v2", "Processed")

    versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert world.failed_calls == [("CreateApplicationVersion", "InvalidParameterValue")]
    assert any("created meanwhile" in line for line in world.log)
    world.done()


def test_too_many_versions_says_how_to_make_room() -> None:
    world = World()
    creation_refused(
        world, "TooManyApplicationVersionsException", "You cannot have more than 1000 Application Versions."
    )

    with pytest.raises(AwsVersionError, match="lifecycle policy") as failure:
        versions(world).register("v2", dockerrun("v2"), world.bucket_of)

    assert failure.value.code == "TooManyApplicationVersionsException"
    world.done()
