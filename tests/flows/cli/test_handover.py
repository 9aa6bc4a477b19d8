"""What `deliverypipeline run` hands its run: the caller's credentials in blocks, named in parameters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import boto3
import pytest
from moto import mock_aws

from flows.cli import run as run_cli
from flows.cli.handover import Handover, Parcel, gather, handed_over, needs_aws
from flows.cli.main import CliError
from flows.config import PipelineConfig, load_config
from flows.controlplane.secrets import RunSecret, block_name, expiry_of
from flows.targets.aws.credentials import RunCredentials
from tests.flows.cli.test_run import parse
from tests.flows.targets.aws.conftest import fake_aws_credentials  # noqa: F401 - autouse: no real AWS
from tests.flows.targets.aws.eb_world import new_session

NOW = 1_800_000_000.0
LONG_TERM = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLELONGTERM", "AWS_SECRET_ACCESS_KEY": "long-term-secret"}


class FakeBlocks:
    """Secret blocks in memory, with the calls made."""

    def __init__(self, expired: tuple[str, ...] = ()) -> None:
        self.values: dict[str, str] = {}
        self.calls: list[str] = []
        self.expired = list(expired)

    def create(self, kind: str, value: str, expires: float) -> RunSecret:
        name = block_name(kind, expires)
        self.values[name] = value
        self.calls.append(f"create {kind}")
        return RunSecret(uuid4(), name, int(expires))

    def delete(self, secret: RunSecret) -> None:
        self.calls.append(f"delete {secret.name}")
        self.values.pop(secret.name, None)

    def sweep(self, now: float) -> list[str]:
        self.calls.append("sweep")
        return self.expired


def shell(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """The caller's shell: only `variables` among the AWS credential variables."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def aws(**settings: object) -> PipelineConfig:
    return load_config(None, {"aws": settings})


def test_long_term_keys_reach_the_run_as_a_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch, **LONG_TERM, AWS_DEFAULT_REGION="us-east-2")
    with mock_aws():  # moto's STS answers GetSessionToken
        handover = gather("aws", aws(run_credentials_s=3600), {}, new_session, now=NOW)

    (parcel,) = handover.parcels
    handed = RunCredentials.from_secret(parcel.value, "b")
    assert (parcel.kind, parcel.setting) == ("aws", "credentials_block")
    assert handed.temporary and handed.access_key_id != LONG_TERM["AWS_ACCESS_KEY_ID"]
    assert "long-term-secret" not in parcel.value
    assert handed.expires is not None and parcel.expires == handed.expires.timestamp()
    until = f"{datetime.fromtimestamp(parcel.expires, UTC):%Y-%m-%d %H:%M} UTC"
    assert handover.notes == (
        "AWS credentials of this shell handed to the run: a session token for 60 min (STS GetSessionToken), "
        f"valid until {until}",
    )
    assert handover.config.aws.region == "us-east-2"  # the shell's region, the configuration naming none


def test_temporary_credentials_reach_the_run_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch, AWS_ACCESS_KEY_ID="ASIAEXAMPLE", AWS_SECRET_ACCESS_KEY="s", AWS_SESSION_TOKEN="t")

    handover = gather("aws", aws(region="eu-central-1"), {}, new_session, now=NOW)

    (parcel,) = handover.parcels
    assert RunCredentials.from_secret(parcel.value, "b") == RunCredentials("ASIAEXAMPLE", "s", "t")
    assert parcel.expires == NOW + 4 * 3600  # expiry unknown: the run's credential lifetime
    assert handover.config.aws.region == "eu-central-1"  # the configuration's region wins


def test_a_named_block_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch, **LONG_TERM)
    handover = gather("aws", aws(credentials_block="team-aws"), {}, lambda: pytest.fail("no chain"), now=NOW)
    assert handover.parcels == ()
    assert handover.notes == ("AWS credentials: the Secret block 'team-aws' (aws.credentials_block)",)


def test_a_shell_without_credentials_leaves_the_worker_hosts_own(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch)
    handover = gather("aws", aws(), {}, new_session, now=NOW)
    assert handover.parcels == ()
    assert handover.notes == ("AWS credentials: none in this shell; the run uses its worker host's own",)


def test_a_profile_that_does_not_exist_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch, AWS_PROFILE="nowhere")
    with pytest.raises(CliError, match=r"the AWS credentials of this shell cannot be resolved .*nowhere"):
        gather("aws", aws(), {}, boto3.session.Session, now=NOW)


def test_a_local_run_takes_no_aws_credentials_unless_its_registry_is_ecr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shell(monkeypatch, **LONG_TERM)
    assert gather("local", aws(), {}, lambda: pytest.fail("no chain"), now=NOW) == Handover(aws())
    ecr = load_config(None, {"registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com"})
    assert needs_aws("local", ecr) and needs_aws("aws", aws()) and not needs_aws("local", aws())


def test_registry_credentials_of_the_shell_reach_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    shell(monkeypatch)
    environ = {"DELIVERY_REGISTRY_USER": "ci", "DELIVERY_REGISTRY_PASSWORD": "pw"}

    handover = gather("local", aws(run_credentials_s=900), environ, new_session, now=NOW)

    login = '{"username": "ci", "password": "pw"}'
    assert handover.parcels == (Parcel("registry", login, NOW + 900, "registry_secret_block"),)
    assert "pw" not in repr(handover.parcels)
    assert gather("local", aws(registry_secret_block="team"), environ, now=NOW).parcels == ()
    assert gather("local", aws(), {"DELIVERY_REGISTRY_USER": "ci"}, now=NOW).parcels == ()


def test_the_blocks_live_while_the_run_does_and_are_removed_after_it() -> None:
    blocks = FakeBlocks(expired=("run-aws-1-0a1b2c3d",))
    said: list[str] = []
    parcels = (
        Parcel("aws", "{}", NOW + 60, "credentials_block"),
        Parcel("registry", "u:p", NOW + 60, "registry_secret_block"),
    )
    handover = Handover(aws(), parcels, ("note",))

    with handed_over(blocks, handover, said.append, now=NOW) as config:
        names = (config.aws.credentials_block, config.aws.registry_secret_block)
        assert all(name and expiry_of(name) == int(NOW + 60) for name in names)
        assert set(blocks.values) == set(names)
        assert blocks.calls == ["sweep", "create aws", "create registry"]

    assert blocks.values == {} and blocks.calls[3:] == [f"delete {names[0]}", f"delete {names[1]}"]
    assert said == ["removed 1 expired run credential block(s)", "note"]


def test_a_crashed_run_keeps_its_blocks_for_its_recovery_until_they_expire() -> None:
    blocks = FakeBlocks()
    said: list[str] = []
    handover = Handover(aws(), (Parcel("aws", "{}", NOW + 60, "credentials_block"),))
    with handed_over(blocks, handover, said.append, now=NOW, keep=lambda: True) as config:
        name = config.aws.credentials_block
    assert name is not None and list(blocks.values) == [name]  # the sweep removes it once expired
    assert not any(call.startswith("delete") for call in blocks.calls)
    assert said[-1].startswith("kept the run's credential block(s) for its recovery")


def test_a_ctrl_c_still_removes_the_blocks() -> None:
    blocks = FakeBlocks()
    handover = Handover(aws(), (Parcel("aws", "{}", NOW + 60, "credentials_block"),))
    with pytest.raises(KeyboardInterrupt), handed_over(blocks, handover, lambda _: None, now=NOW):
        raise KeyboardInterrupt
    assert blocks.values == {}


def test_only_the_block_names_are_parameters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shell(
        monkeypatch,
        AWS_ACCESS_KEY_ID="ASIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="the-secret",
        AWS_SESSION_TOKEN="tok",
    )
    blocks = FakeBlocks()
    args = parse("--target", "aws", "--repo", str(tmp_path))
    registry = {"DELIVERY_REGISTRY_USER": "u", "DELIVERY_REGISTRY_PASSWORD": "pw"}
    handover = gather("aws", load_config(None), registry, new_session, now=NOW)

    with handed_over(blocks, handover, lambda _: None, now=NOW) as config:
        parameters = json.dumps(run_cli.run_parameters(args, config))

    assert "credentials_block" in parameters and "registry_secret_block" in parameters
    assert not any(secret in parameters for secret in ("the-secret", "tok", '"pw"', "u:pw"))
