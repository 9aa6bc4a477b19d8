"""What `deliverypipeline run` hands its run from the caller's shell: credentials, in Secret blocks.

The run executes in the worker's process, which never saw this shell (and whose environment no
run changes). So before submitting, the command resolves the caller's AWS credentials with boto3's
whole standard chain, makes them short-lived where it can (`flows.targets.aws.credentials`), and
takes DELIVERY_REGISTRY_USER/PASSWORD as they are; each goes into a Prefect Secret block made for
this run (`flows.controlplane.secrets`) whose *name* is set in the run's configuration
(`aws.credentials_block`, `aws.registry_secret_block`). The blocks are removed when the run ends
(after following it, Ctrl-C included); expired ones that a killed command left are swept first.
A block the configuration already names is used as it is, and nothing is handed over for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError

from flows.cli.main import CliError
from flows.config import PipelineConfig
from flows.controlplane.secrets import RunSecret
from flows.image.registry_auth import caller_registry_secret
from flows.targets.aws.facts import ecr_registry

if TYPE_CHECKING:
    import boto3

Say = Callable[[str], None]


class Blocks(Protocol):
    """Where a run's Secret blocks are made (`flows.controlplane.secrets.SecretBlocks`)."""

    def create(self, kind: str, value: str, expires: float) -> RunSecret:
        """A new block holding `value`."""
        ...

    def delete(self, secret: RunSecret) -> None:
        """Remove the block."""

    def sweep(self, now: float) -> list[str]:
        """Remove expired run blocks; their names."""
        ...


SessionFactory = Callable[[], "boto3.session.Session"]
AWS_BLOCK = "credentials_block"
REGISTRY_BLOCK = "registry_secret_block"


@dataclass(frozen=True)
class Parcel:
    """One secret to hand to the run: the block kind, its value, when it expires, which setting names it."""

    kind: str
    value: str = field(repr=False)
    expires: float  # Unix seconds
    setting: str  # the `aws` setting the block's name goes into


@dataclass(frozen=True)
class Handover:
    """The run's configuration before the blocks are made, what to hand over, and what to tell the caller."""

    config: PipelineConfig
    parcels: tuple[Parcel, ...] = ()
    notes: tuple[str, ...] = ()


def needs_aws(target: str, config: PipelineConfig) -> bool:
    """Whether the run talks to AWS: the aws target, or an image registry in ECR."""
    return target == "aws" or ecr_registry(config.registry) is not None


def with_region(config: PipelineConfig, region: str | None) -> PipelineConfig:
    """`config` with the caller's region when the configuration and command line set none."""
    if not region or "region" in config.aws.model_fields_set:
        return config
    return config.model_copy(update={"aws": config.aws.model_copy(update={"region": region})})


def with_blocks(config: PipelineConfig, names: Mapping[str, str]) -> PipelineConfig:
    """`config` naming the run's blocks (`names`: aws setting -> block name)."""
    if not names:
        return config
    return config.model_copy(update={"aws": config.aws.model_copy(update=dict(names))})


def _expiry(expires: datetime | None, now: float, duration_s: int) -> float:
    return expires.timestamp() if expires is not None else now + duration_s


def aws_parcel(
    config: PipelineConfig, session_factory: SessionFactory, now: float
) -> tuple[PipelineConfig, Parcel | None, str]:
    """The caller's AWS credentials, made short-lived, as a parcel; the config (region) and a note.

    Raises `CliError` when the shell's chain points at credentials that cannot be resolved
    (an expired SSO login, a profile that does not exist). boto3 is loaded only here: a local
    run does without it.
    """
    from flows.targets.aws.clients import client_options
    from flows.targets.aws.credentials import caller_credentials, short_lived

    if config.aws.credentials_block:
        return (
            config,
            None,
            f"AWS credentials: the Secret block {config.aws.credentials_block!r} (aws.credentials_block)",
        )
    try:
        session = session_factory()
        credentials = caller_credentials(session)
    except BotoCoreError as exc:
        raise CliError(
            f"the AWS credentials of this shell cannot be resolved ({exc}); log in again "
            "(e.g. `aws sso login`) or fix AWS_PROFILE"
        ) from exc
    config = with_region(config, session.region_name)
    if credentials is None:
        return config, None, "AWS credentials: none in this shell; the run uses its worker host's own"
    duration = config.aws.run_credentials_s
    sts = session.client("sts", **client_options(config))
    made = short_lived(credentials, sts, duration)
    expires = _expiry(made.credentials.expires, now, duration)
    parcel = Parcel("aws", made.credentials.to_secret(), expires, AWS_BLOCK)
    until = f", valid until {datetime.fromtimestamp(expires, UTC):%Y-%m-%d %H:%M} UTC"
    return config, parcel, f"AWS credentials of this shell handed to the run: {made.how}{until}"


def registry_parcel(config: PipelineConfig, environ: Mapping[str, str], now: float) -> Parcel | None:
    """The caller's registry user and password as a parcel, unless a block is named or ECR logs in."""
    if config.aws.registry_secret_block or ecr_registry(config.registry) is not None:
        return None
    value = caller_registry_secret(environ)
    if value is None:
        return None
    return Parcel("registry", value, now + config.aws.run_credentials_s, REGISTRY_BLOCK)


def _shell_session() -> boto3.session.Session:
    import boto3

    return boto3.session.Session()


def gather(
    target: str,
    config: PipelineConfig,
    environ: Mapping[str, str],
    session_factory: SessionFactory = _shell_session,
    now: float | None = None,
) -> Handover:
    """What to hand over for a run of `target` from the shell `environ` (and its boto3 chain)."""
    now = time.time() if now is None else now
    parcels: list[Parcel] = []
    notes: list[str] = []
    if needs_aws(target, config):
        config, parcel, note = aws_parcel(config, session_factory, now)
        notes.append(note)
        if parcel is not None:
            parcels.append(parcel)
    registry = registry_parcel(config, environ, now)
    if registry is not None:
        parcels.append(registry)
        notes.append("registry credentials of this shell handed to the run")
    return Handover(config, tuple(parcels), tuple(notes))


@contextmanager
def handed_over(
    blocks: Blocks,
    handover: Handover,
    say: Say,
    now: float | None = None,
    keep: Callable[[], bool] = lambda: False,
) -> Iterator[PipelineConfig]:
    """The run's configuration naming its blocks, made for the block's life and removed after it.

    Expired run blocks are swept first (a killed command's); a block made here is removed at the
    end whatever happened (Ctrl-C included), unless `keep()` says the run still needs it then: a
    crashed run's recovery reads the same blocks, and they are swept once they expire.
    """
    now = time.time() if now is None else now
    swept = blocks.sweep(now)
    if swept:
        say(f"removed {len(swept)} expired run credential block(s)")
    made: list[RunSecret] = []
    try:
        names: dict[str, str] = {}
        for parcel in handover.parcels:
            secret = blocks.create(parcel.kind, parcel.value, parcel.expires)
            made.append(secret)
            names[parcel.setting] = secret.name
        for note in handover.notes:
            say(note)
        yield with_blocks(handover.config, names)
    finally:
        if made and keep():
            say(f"kept the run's credential block(s) for its recovery; swept once they expire ({len(made)})")
        else:
            _remove(blocks, made, say)


def _remove(blocks: Blocks, made: Sequence[RunSecret], say: Say) -> None:
    for secret in made:
        try:
            blocks.delete(secret)
        except Exception as exc:  # the run has ended: a left block expires and is swept later
            reason = type(exc).__name__
            say(f"could not remove the run's block {secret.name} ({reason}); it is swept once it expires")
