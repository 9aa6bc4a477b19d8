"""Prefect Secret blocks that carry one run's credentials: made and removed over the REST API.

A run submitted by `deliverypipeline run` may need credentials its caller holds (AWS, the image
registry) that the worker's environment never saw. They travel as a Prefect `Secret` block:
Prefect encrypts block data at rest and shows it to no reader that does not ask for secrets, and
the run's parameters carry only the block's name. A run's block is named
`run-<kind>-<expiry>-<random>`, its expiry in Unix seconds: the caller removes it when the run
ends, and `sweep` removes any whose expiry has passed (a killed caller's) without reading one.
Inside a run, `read_secret` reads a block back through Prefect's own client (already loaded there).
The control plane's processes never inherit the credentials of the shell that started them
(`without_caller_credentials`): a run gets the caller's through its blocks, or the host's own.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flows.controlplane import ControlPlaneError
from flows.controlplane.api import ApiError, ControlPlaneApi, NotFound

BLOCK_TYPE = "secret"  # Prefect's `Secret` block type, registered by every server at start
RUN_BLOCK = re.compile(r"^run-(?P<kind>[a-z]+)-(?P<expiry>\d{9,})-(?P<token>[0-9a-f]{8,})$")
PAGE = 200  # the API's largest page
# The caller's credentials in a shell's environment: who it is (keys, session token, the profile
# it chose), its registry login and the webhook's secret. The control plane's children (server,
# worker, so every run
# and whatever a run starts) never inherit them from the shell that started the control plane.
CALLER_CREDENTIALS = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "DELIVERY_REGISTRY_USER",
        "DELIVERY_REGISTRY_PASSWORD",
        "DELIVERY_WEBHOOK_SECRET",  # the receiver's alone: a pushed commit's tests run under the worker
    }
)


class SecretBlockError(ControlPlaneError):
    """A run's Secret block could not be made; the message never carries the secret."""


@dataclass(frozen=True)
class RunSecret:
    """A Secret block made for one run: its id, its name (what the run is told) and its expiry."""

    id: UUID
    name: str
    expires: int  # Unix seconds


def without_caller_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without the caller's credentials (`CALLER_CREDENTIALS`)."""
    return {key: value for key, value in environ.items() if key not in CALLER_CREDENTIALS}


def block_name(kind: str, expires: float, token: str | None = None) -> str:
    """The name of a run's block of `kind` (lowercase letters) that expires at `expires` (Unix s)."""
    name = f"run-{kind}-{int(expires)}-{token or secrets.token_hex(6)}"
    if not RUN_BLOCK.match(name):
        raise ValueError(f"not a run block name: {name!r} (kind: lowercase letters; token: hex)")
    return name


def expiry_of(name: str) -> int | None:
    """When the run block `name` expires (Unix seconds); None for a block that is not a run's."""
    match = RUN_BLOCK.match(name)
    return int(match.group("expiry")) if match else None


def expired(names: Iterable[str], now: float) -> list[str]:
    """The run blocks among `names` whose expiry is past at `now`; other blocks are never included."""
    return [name for name in names if (expiry := expiry_of(name)) is not None and expiry <= now]


class SecretBlocks:
    """Run Secret blocks on one control plane, through its REST API (no Prefect import)."""

    def __init__(self, api: ControlPlaneApi) -> None:
        """Act on the server `api` talks to."""
        self.api = api

    def create(self, kind: str, value: str, expires: float) -> RunSecret:
        """A new Secret block holding `value`, named for `kind` and `expires`."""
        name = block_name(kind, expires)
        try:
            block_type = self.api.call("GET", f"/block_types/slug/{BLOCK_TYPE}")
            schemas = self.api.call(
                "POST",
                "/block_schemas/filter",
                {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1},
            )
            if not schemas:
                raise SecretBlockError(
                    "the control plane has no schema for Secret blocks: restart it "
                    "(`deliverypipeline server stop`, then `deliverypipeline server start`)"
                )
            body = {
                "name": name,
                "data": {"value": value},
                "block_schema_id": schemas[0]["id"],
                "block_type_id": block_type["id"],
                "is_anonymous": False,
            }
            made = self.api.call("POST", "/block_documents/", body)
        except ApiError as exc:  # the refusal's body could echo the request: it is not repeated
            raise SecretBlockError(
                f"the control plane refused to store the run's {kind} credentials in a Secret block "
                f"(HTTP {exc.status}); `deliverypipeline server status` shows the server"
            ) from None
        return RunSecret(UUID(made["id"]), name, int(expires))

    def delete(self, secret: RunSecret) -> None:
        """Remove the block; one already gone is fine."""
        with contextlib.suppress(NotFound):
            self.api.call("DELETE", f"/block_documents/{secret.id}")

    def run_blocks(self) -> dict[str, UUID]:
        """Every run block on the server, by name (secrets are not read)."""
        found: dict[str, UUID] = {}
        offset = 0
        while True:
            page: list[dict[str, Any]] = self.api.call(
                "POST",
                "/block_documents/filter",
                {
                    "block_documents": {"name": {"like_": "run-"}, "is_anonymous": {"eq_": False}},
                    "block_types": {"slug": {"any_": [BLOCK_TYPE]}},
                    "include_secrets": False,
                    "limit": PAGE,
                    "offset": offset,
                },
            )
            found.update({row["name"]: UUID(row["id"]) for row in page if expiry_of(row.get("name") or "")})
            if len(page) < PAGE:
                return found
            offset += PAGE

    def sweep(self, now: float) -> list[str]:
        """Remove the run blocks whose expiry has passed; their names."""
        blocks = self.run_blocks()
        gone = expired(blocks, now)
        for name in gone:
            self.delete(RunSecret(blocks[name], name, expiry_of(name) or 0))
        return gone


def read_secret(name: str) -> Any:
    """Inside a run: the value of the Secret block `name` (a string or a mapping).

    Through Prefect's own client, which the run has loaded already and points at its server.
    """
    from prefect.blocks.system import Secret

    # `load` is sync in a sync context (Prefect's async_dispatch); its annotation covers both.
    block: Secret[Any] = Secret.load(name)  # type: ignore[assignment]
    return block.get()
