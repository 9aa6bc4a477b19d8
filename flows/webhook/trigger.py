"""Creating the pipeline's flow run in Prefect for an accepted push, within a hard deadline.

The only I/O of the receiver besides HTTP. The flow run is created from the deployment, not run
here: a worker picks it up, so the webhook answers at once. The GitHub delivery id is the run's
idempotency key, so a redelivery (or a retry after a timed-out answer) returns the run created
the first time instead of starting a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import anyio
import httpx

from flows.errors import TriggerError
from flows.report.notify import run_ui_url
from flows.webhook.payload import Deploy

DEFAULT_TIMEOUT_S = 8.0  # GitHub gives up after 10 s


class TriggerUnavailable(TriggerError):
    """Prefect could not create the run (unreachable, too slow, no such deployment): the answer is 503."""


@dataclass(frozen=True)
class TriggeredRun:
    """The flow run that now exists for a push (created now, or earlier for a redelivery)."""

    flow_run_id: str
    flow_run_name: str
    deployment: str
    ui_url: str | None


class Trigger(Protocol):
    """Starts (or finds, for a redelivery) the flow run of one accepted push."""

    async def __call__(self, deploy: Deploy) -> TriggeredRun: ...


def idempotency_key(deploy: Deploy) -> str:
    """The flow run's idempotency key: one run per GitHub delivery."""
    return f"github-delivery:{deploy.delivery}"


class PrefectTrigger:
    """Creates the run through the Prefect API at `api_url`, giving up after `timeout_s` seconds."""

    def __init__(
        self,
        deployment: str,
        api_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ui_url: str | None = None,
    ) -> None:
        if "/" not in deployment:
            raise ValueError(
                f"deployment {deployment!r} must be written FLOW/DEPLOYMENT, e.g. deliverypipeline/local"
            )
        self.deployment = deployment
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        # The UI is served beside the API (`.../api` → `...`) unless told otherwise.
        self.ui_url = ui_url or self.api_url.removesuffix("/api")

    async def __call__(self, deploy: Deploy) -> TriggeredRun:
        """Create the flow run, or raise `TriggerUnavailable` with what to check."""
        from prefect.client.orchestration import PrefectClient
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        where = f"the Prefect API at {self.api_url}"
        client = PrefectClient(
            self.api_url,
            api_key=PREFECT_API_KEY.value(),
            auth_string=PREFECT_API_AUTH_STRING.value(),
            httpx_settings={"timeout": httpx.Timeout(self.timeout_s)},
        )
        try:
            with anyio.fail_after(self.timeout_s):
                async with client:
                    deployment = await client.read_deployment_by_name(self.deployment)
                    run = await client.create_flow_run_from_deployment(
                        deployment.id,
                        parameters=deploy.parameters(),
                        tags=deploy.tags(),
                        idempotency_key=idempotency_key(deploy),
                    )
        except ObjectNotFound:
            raise TriggerUnavailable(
                f"deployment {self.deployment!r} not found at {where}; "
                "deploy it with `prefect --no-prompt deploy --all` from the checkout"
            ) from None
        except TimeoutError:
            raise TriggerUnavailable(
                f"{where} did not answer within {self.timeout_s:g} s; redelivering is safe "
                "(the same delivery id never starts a second run)"
            ) from None
        except (httpx.HTTPError, PrefectHTTPStatusError, OSError) as exc:
            raise TriggerUnavailable(
                f"{where} is unreachable or failed ({type(exc).__name__}: {exc}); "
                "is `prefect server start` running? Redeliver once it is"
            ) from None
        return TriggeredRun(
            flow_run_id=str(run.id),
            flow_run_name=run.name,
            deployment=self.deployment,
            ui_url=run_ui_url(run.id, self.ui_url),
        )
