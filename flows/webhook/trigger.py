"""Creating the pipeline's flow run in Prefect for an accepted push, within a hard deadline.

The only I/O of the receiver besides HTTP. The flow run is created from the deployment, not run
here: a worker picks it up, so the webhook answers at once. The GitHub delivery id is the run's
idempotency key, so a redelivery (or a retry after a timed-out answer) returns the run created
the first time instead of starting a second one.

Under a burst (GitHub sends a delivery per push, all at once after a `git push` of several
branches or a merge train) Prefect's SQLite server answers "database is locked" when many clients
write at the same instant. So the receiver holds one client, opened at start-up (Prefect is
imported and connected before the first request), and creates runs one at a time behind a
lock: a run takes a few tens of milliseconds, and every request keeps its own deadline, time
spent waiting its turn included. After a run is created, the older runs of its branch that
have not started are cancelled as superseded (flows/webhook/supersede.py) in the background,
only while no creation waits, so superseding never delays an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from uuid import UUID

import httpx

from flows.errors import TriggerError
from flows.report.notify import run_ui_url
from flows.webhook import supersede
from flows.webhook.payload import Deploy

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

DEFAULT_TIMEOUT_S = 8.0  # GitHub gives up after 10 s
DEFAULT_IN_FLIGHT = 1  # run creations under way at once (2 made the receiver's own writes collide)
HEDGE_AFTER_S = 0.25  # a creation usually takes 20-60 ms; one stuck behind a lock takes ~2 s
MAX_ATTEMPTS = 3  # per delivery
RETRIED_STATUSES = frozenset({429, 502, 503})  # "database is locked" is a 503
RETRY_BASE_S = 0.05
RETRY_MAX_S = 0.4

_log = logging.getLogger(__name__)


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


@runtime_checkable
class Lifecycle(Protocol):
    """A trigger with resources opened when the receiver starts and closed when it stops."""

    async def start(self) -> None:
        """Open connections before the receiver accepts requests."""
        ...

    async def close(self) -> None:
        """Release them when the receiver stops."""
        ...


def idempotency_key(deploy: Deploy) -> str:
    """The flow run's idempotency key: one run per GitHub delivery."""
    return f"github-delivery:{deploy.delivery}"


class PrefectTrigger:
    """Creates runs through one shared client of the Prefect API at `api_url`, one at a time.

    Each call gives up after `timeout_s` seconds (its wait for its turn included). With
    `supersede` (the default), creating the run of a push cancels the older not-started runs
    of the same branch. `start()` (the receiver's start-up) imports Prefect, opens the client
    and looks the deployment up; a call before `start()` starts it on the spot.
    """

    def __init__(
        self,
        deployment: str,
        api_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ui_url: str | None = None,
        *,
        supersede: bool = True,
        in_flight: int = DEFAULT_IN_FLIGHT,
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
        self.supersede = supersede
        self.where = f"the Prefect API at {self.api_url}"
        self._client: PrefectClient | None = None
        self._entered = False
        self._no_retry_settings: tuple[Any, Any] | None = None
        self._deployment_id: UUID | None = None
        self._slots = asyncio.Semaphore(in_flight)  # writes to Prefect at a time
        self._creating = 0  # creations waiting or in flight; superseding waits for none
        self._idle = asyncio.Event()
        self._idle.set()
        self._newest: dict[str, FlowRun] = {}  # per pushed ref: the newest run to supersede for
        self._superseding: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Import Prefect, open the shared client and resolve the deployment.

        Prefect being down is not fatal here: it is logged, and each delivery answers 503 with
        the reason until Prefect answers again.
        """
        client = self._open()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._slots:
                    await self._resolve(client)
            _log.info("connected to %s; deployment %s found", self.where, self.deployment)
        except (TimeoutError, TriggerUnavailable, httpx.HTTPError, OSError) as exc:
            reason = exc if isinstance(exc, TriggerUnavailable) else self._unreachable(exc)
            _log.warning("%s; deliveries get 503 until this is fixed", reason)

    async def close(self) -> None:
        """Stop superseding and close the client."""
        if self._superseding is not None:
            self._superseding.cancel()
            await asyncio.gather(self._superseding, return_exceptions=True)
            self._superseding = None
        if self._client is not None and self._entered:
            await self._client.__aexit__(None, None, None)
        self._client = None
        self._entered = False

    def _open(self) -> PrefectClient:
        if self._client is not None:
            return self._client
        from prefect.client.orchestration import PrefectClient
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        self._client = PrefectClient(
            self.api_url,
            api_key=PREFECT_API_KEY.value(),
            auth_string=PREFECT_API_AUTH_STRING.value(),
            httpx_settings={"timeout": httpx.Timeout(self.timeout_s)},
        )
        return self._client

    async def _started(self) -> PrefectClient:
        client = self._open()
        if not self._entered:
            await client.__aenter__()
            self._entered = True
        return client

    async def _resolve(self, client: PrefectClient) -> UUID:
        from prefect.exceptions import ObjectNotFound

        if self._deployment_id is None:
            await self._started()
            try:
                deployment = await client.read_deployment_by_name(self.deployment)
            except ObjectNotFound:
                raise TriggerUnavailable(
                    f"deployment {self.deployment!r} not found at {self.where}; "
                    "deploy it with `prefect --no-prompt deploy --all` from the checkout"
                ) from None
            self._deployment_id = deployment.id
        return self._deployment_id

    def _unreachable(self, exc: BaseException) -> TriggerUnavailable:
        if isinstance(exc, TimeoutError):
            return TriggerUnavailable(f"{self.where} did not answer within {self.timeout_s:g} s")
        return TriggerUnavailable(
            f"{self.where} is unreachable or failed ({type(exc).__name__}: {exc}); "
            "is `prefect server start` running?"
        )

    async def __call__(self, deploy: Deploy) -> TriggeredRun:
        """Create the flow run, or raise `TriggerUnavailable` with what to check."""
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        self._creating += 1
        self._idle.clear()
        arrived = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                client = await self._started()
                async with self._slots:
                    turn = time.monotonic()
                    deployment_id = await self._resolve(client)
                    run = await self._create(client, deployment_id, deploy)
                    _log.info(
                        "delivery %s: run %s after %.0f ms in the queue, %.0f ms to create",
                        deploy.delivery,
                        run.id,
                        (turn - arrived) * 1000,
                        (time.monotonic() - turn) * 1000,
                    )
        except ObjectNotFound:  # deleted since it was looked up: look it up again next time
            self._deployment_id = None
            raise TriggerUnavailable(
                f"deployment {self.deployment!r} no longer exists at {self.where}; "
                "deploy it with `prefect --no-prompt deploy --all` from the checkout"
            ) from None
        except TimeoutError:
            raise TriggerUnavailable(
                f"{self.where} did not answer within {self.timeout_s:g} s; redelivering is safe "
                "(the same delivery id never starts a second run)"
            ) from None
        except (httpx.HTTPError, PrefectHTTPStatusError, OSError) as exc:
            raise TriggerUnavailable(
                f"{self._unreachable(exc)} Redeliver once it is (the same delivery id never starts "
                "a second run)"
            ) from None
        finally:
            self._creating -= 1
            if self._creating == 0:
                self._idle.set()
        if self.supersede:
            self._supersede_for(run)
        return TriggeredRun(
            flow_run_id=str(run.id),
            flow_run_name=run.name,
            deployment=self.deployment,
            ui_url=run_ui_url(run.id, self.ui_url),
        )

    async def _create(self, client: PrefectClient, deployment_id: UUID, deploy: Deploy) -> FlowRun:
        """Create the run, asking again at once when Prefect is slow or busy.

        On SQLite a write whose snapshot went stale behind another writer (one of the server's own
        services) waits ~2 s for a lock it cannot get, then answers 503 "database is locked",
        while a fresh request goes through in a few tens of milliseconds. So when an attempt has
        not answered within `HEDGE_AFTER_S`, the same request is sent again beside it (at most
        `MAX_ATTEMPTS` at once) and the first answer wins; a 503/429/502 is asked again after
        0.05-0.4 s. The Prefect client's own retries (2 s, 4 s, ... on a 503) are off here. All
        of it is safe: every attempt carries the delivery's idempotency key, so they all name the
        same run. The caller's deadline bounds the whole.
        """
        from prefect.exceptions import PrefectHTTPStatusError

        async def attempt() -> FlowRun:
            with self._without_client_retries():
                return await client.create_flow_run_from_deployment(
                    deployment_id,
                    parameters=deploy.parameters(),
                    tags=deploy.tags(),
                    idempotency_key=idempotency_key(deploy),
                )

        running: set[asyncio.Task[FlowRun]] = set()
        refused = 0
        try:
            while True:
                if len(running) < MAX_ATTEMPTS:
                    running.add(asyncio.ensure_future(attempt()))
                done, running = await asyncio.wait(
                    running, timeout=HEDGE_AFTER_S, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    error = task.exception()
                    if error is None:
                        return task.result()
                    if not (
                        isinstance(error, PrefectHTTPStatusError)
                        and error.response.status_code in RETRIED_STATUSES
                    ):
                        raise error
                    _log.info(
                        "delivery %s: Prefect answered %s, asking again",
                        deploy.delivery,
                        error.response.status_code,
                    )
                    refused += 1
                if done and not running:
                    await asyncio.sleep(
                        min(RETRY_BASE_S * 2**refused, RETRY_MAX_S) * random.uniform(0.5, 1.0)
                    )
                elif not done:
                    _log.info("delivery %s: Prefect slow to answer, asking again beside", deploy.delivery)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _without_client_retries(self) -> contextlib.AbstractContextManager[object]:
        import prefect.context
        from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

        if self._no_retry_settings is None:
            current = prefect.context.get_settings_context()
            self._no_retry_settings = (
                current.profile,
                current.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: 0}),
            )
        profile, settings = self._no_retry_settings
        return prefect.context.SettingsContext(profile=profile, settings=settings)

    # Superseding, in the background.

    def _supersede_for(self, run: FlowRun) -> None:
        ref = supersede.pushed_ref(run)
        if ref is None or run.created is None:
            return
        known = self._newest.get(ref)
        if (
            known is None
            or known.created is None
            or (known.created, str(known.id))
            < (
                run.created,
                str(run.id),
            )
        ):
            self._newest[ref] = run
        if self._superseding is None or self._superseding.done():
            self._superseding = asyncio.get_running_loop().create_task(self._supersede_all())

    async def _supersede_all(self) -> None:
        while self._newest:
            ref, newest = self._newest.popitem()
            commit = str(newest.parameters.get("ref"))
            try:
                await self._idle.wait()
                async with self._slots:
                    older = await supersede.older_waiting_runs(await self._started(), newest)
                for run in older:
                    await self._idle.wait()  # answers first: a creation never waits for this
                    async with self._slots:
                        cancelled = await supersede.cancel_superseded(await self._started(), run, commit)
                    if cancelled:
                        _log.info("flow run %s (%s): %s", run.id, run.name, supersede.message(commit))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the flow's own check still stops the older runs
                _log.warning(
                    "could not cancel the runs %s of %s supersedes (%s: %s); each will cancel "
                    "itself when it gets the run slot",
                    ref,
                    commit,
                    type(exc).__name__,
                    exc,
                )

    async def wait_superseded(self) -> None:
        """Return once the background superseding has nothing left to do (tests, benchmarks)."""
        while self._superseding is not None and not self._superseding.done():
            await asyncio.shield(self._superseding)
