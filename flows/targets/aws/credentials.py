"""AWS credentials of one run: the caller's, made short-lived and handed over in a Secret block.

A run executes in the worker's flow-run process, which never saw the shell of whoever submitted
it. So `deliverypipeline run` resolves the caller's credentials with boto3's whole standard chain
(keys and session token in the environment, a profile, SSO, an instance role), turns long-term
keys into a session token (STS GetSessionToken, `aws.run_credentials_s`), keeps temporary ones as
they are, and stores them in a Prefect Secret block whose name travels as `aws.credentials_block`
(`flows.cli.handover`). In the run, `run_session` builds the boto3 session from that block; with
no block named, from the standard chain of the run's own process, i.e. the worker host's. Nothing
here sets an environment variable: the worker's environment is the same after a run as before.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from flows.config import PipelineConfig
from flows.targets.aws.errors import AwsCredentialsError

SecretReader = Callable[[str], Any]
# The fields of the JSON a credentials block holds.
FIELDS = ("access_key_id", "secret_access_key", "session_token", "expires")


@dataclass(frozen=True)
class RunCredentials:
    """One set of AWS credentials; the secret parts never show in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires: datetime | None = None  # None: not known (e.g. keys from the environment)

    @property
    def temporary(self) -> bool:
        """True for session credentials (with a token): STS cannot shorten them further."""
        return bool(self.session_token)

    def to_secret(self) -> str:
        """The JSON a Secret block holds."""
        return json.dumps(
            {
                "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key,
                "session_token": self.session_token,
                "expires": self.expires.isoformat() if self.expires else None,
            }
        )

    @classmethod
    def from_secret(cls, value: Any, block: str) -> RunCredentials:
        """Credentials from a Secret block's value: the JSON of `to_secret`, or the same as a mapping."""
        try:
            data: Any = json.loads(value) if isinstance(value, str) else value
            expires = data.get("expires")
            return cls(
                str(data["access_key_id"]),
                str(data["secret_access_key"]),
                str(data["session_token"]) if data.get("session_token") else None,
                datetime.fromisoformat(expires) if expires else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AwsCredentialsError(
                "Secret.load",
                "",
                f"the Secret block {block!r} (aws.credentials_block) holds no AWS credentials",
                "store JSON with access_key_id, secret_access_key and, for temporary ones, "
                "session_token in it (flows/targets/aws/README.md, section 1)",
            ) from exc


def caller_credentials(session: boto3.session.Session) -> RunCredentials | None:
    """What boto3's standard chain resolves for `session` (None: nothing found), frozen now."""
    found = session.get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        return None
    expiry = getattr(found, "_expiry_time", None)  # refreshable (SSO, assumed role): when they end
    return RunCredentials(
        frozen.access_key,
        frozen.secret_key,
        frozen.token or None,
        expiry if isinstance(expiry, datetime) else None,
    )


@dataclass(frozen=True)
class ShortLived:
    """Credentials to hand to a run, and one line saying what was made of the caller's."""

    credentials: RunCredentials
    how: str


def short_lived(credentials: RunCredentials, sts: Any, duration_s: int) -> ShortLived:
    """Temporary credentials as they are; long-term keys exchanged for a session token of `duration_s`.

    When STS refuses (no permission, an endpoint without STS), the long-term keys are handed over
    as they are (still only in the encrypted block, removed when the run ends), and `how` says so.
    """
    if credentials.temporary:
        return ShortLived(credentials, "temporary credentials, handed over as they are")
    try:
        answer = sts.get_session_token(DurationSeconds=duration_s)["Credentials"]
    except (ClientError, BotoCoreError, KeyError) as exc:
        reason = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        return ShortLived(
            credentials,
            f"long-term keys handed over as they are: STS GetSessionToken failed "
            f"({reason or type(exc).__name__}); allow sts:GetSessionToken to hand over short-lived ones",
        )
    expires = answer.get("Expiration")
    made = RunCredentials(
        str(answer["AccessKeyId"]),
        str(answer["SecretAccessKey"]),
        str(answer["SessionToken"]),
        expires.astimezone(UTC) if isinstance(expires, datetime) else None,
    )
    return ShortLived(made, f"a session token for {duration_s // 60} min (STS GetSessionToken)")


def session_with(credentials: RunCredentials, region: str | None = None) -> boto3.session.Session:
    """A boto3 session signing with exactly `credentials` (no environment involved)."""
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        region_name=region,
    )


def chain_owner() -> str:
    """Whose standard chain a run falls back to: this process's, on this host."""
    return (
        f"the environment of the run's process (pid {os.getpid()}, started by the worker, pid "
        f"{os.getppid()}, on host {socket.gethostname()}): boto3's standard chain there"
    )


def _read_prefect_secret(name: str) -> Any:
    from flows.controlplane.secrets import read_secret

    return read_secret(name)


def run_session(
    config: PipelineConfig, read: SecretReader | None = None
) -> tuple[boto3.session.Session, str]:
    """The run's boto3 session and where its credentials come from (said in messages).

    From the Secret block `aws.credentials_block` when one is named (a missing or malformed block
    is an `AwsCredentialsError`), else boto3's standard chain of this process. `read` reads a
    block's value (default: through Prefect's client, in the run).
    """
    block = config.aws.credentials_block
    if not block:
        return boto3.session.Session(region_name=config.aws.region), chain_owner()
    try:
        value = (read or _read_prefect_secret)(block)
    except Exception as exc:  # Prefect raises ValueError, httpx errors... for a missing block or API
        raise AwsCredentialsError(
            "Secret.load",
            "",
            f"the Secret block {block!r} named by aws.credentials_block could not be read "
            f"({type(exc).__name__})",
            "a run's own block is removed when its `deliverypipeline run` ends: start a new run "
            "with `deliverypipeline run`, or create the block (flows/targets/aws/README.md, section 1)",
        ) from exc
    credentials = RunCredentials.from_secret(value, block)
    return session_with(credentials, config.aws.region), f"the Secret block {block!r} (aws.credentials_block)"
