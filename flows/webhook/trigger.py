"""Creating the pipeline's flow run in Prefect for an accepted push, within a hard deadline.

The only I/O of the receiver besides HTTP. The flow run is created from the deployment, not run
here: a worker picks it up, so the webhook answers at once. The GitHub delivery id is the run's
idempotency key, so a redelivery (or a retry after a timed-out answer) returns the run created
the first time instead of starting a second one.

Under a burst (GitHub sends a delivery per push, all at once after a `git push` of several
branches or a merge train) Prefect's SQLite server answers "database is locked" when many clients
write at the same instant. So the receiver holds one client of the control plane's API (the
pipeline's one adapter, flows/controlplane/api.py; its calls run in a few threads of the
receiver's own, as they block), resolves the deployment at start-up, and creates runs one at a
time behind a lock: a run takes a few tens of milliseconds, and every request keeps its own
deadline, time spent waiting its turn included. After a run is created, the not-started runs of
its branch that a newer push supersedes are cancelled (flows/webhook/supersede.py) in the
background, only while no creation waits, so superseding never delays an answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable
from uuid import UUID

from flows.controlplane.api import TRANSIENT, ApiError, ControlPlaneApi, NotFound
from flows.controlplane.records import FlowRun
from flows.errors import TriggerError
from flows.report.notify import run_ui_url
from flows.webhook import supersede
from flows.webhook.payload import Deploy

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 8.0  # GitHub gives up after 10 s
DEFAULT_IN_FLIGHT = 1  # run creations under way at once (2 made the receiver's own writes collide)
HEDGE_AFTER_S = 0.25  # a creation usually takes 20-60 ms; one stuck behind a lock takes ~2 s
MAX_ATTEMPTS = 3  # per delivery
NO_ANSWER_RETRIES = 2  # attempts without an answer asked again (a kept connection that was closed)
THREADS = 8  # the API's calls at once: the attempts of one creation, superseding, abandoned slow ones
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
    """Creates runs through one shared client of the control plane's API at `api_url`, one at a time.

    Each call gives up after `timeout_s` seconds (its wait for its turn included). With
    `supersede` (the default), creating the run of a push cancels the not-started runs of the
    same branch that a newer push supersedes. `start()` (the receiver's start-up) looks the
    deployment up; a call before `start()` looks it up on the spot. `api`: a client to use
    instead (tests).
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
        api: ControlPlaneApi | None = None,
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
        # One attempt per call: this receiver retries the same TRANSIENT statuses itself, at once,
        # within its own deadline.
        self._api = api or ControlPlaneApi(self.api_url, retry_s=0, timeout_s=timeout_s)
        self._threads: ThreadPoolExecutor | None = None
        self._deployment_id: UUID | None = None
        self._slots = asyncio.Semaphore(in_flight)  # writes to Prefect at a time
        self._creating = 0  # creations waiting or in flight; superseding waits for none
        self._idle = asyncio.Event()
        self._idle.set()
        self._branches: set[tuple[UUID, str]] = set()  # (deployment, pushed ref) to supersede in
        self._superseding: asyncio.Task[None] | None = None

    async def _io(self, call: Callable[..., T], *args: object) -> T:
        """Run one blocking call of the API in the receiver's threads."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="prefect-api")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(call, *args))

    async def start(self) -> None:
        """Resolve the deployment before the first delivery.

        Prefect being down is not fatal here: it is logged, and each delivery answers 503 with
        the reason until Prefect answers again.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._slots:
                    await self._resolve()
            _log.info("connected to %s; deployment %s found", self.where, self.deployment)
        except (TimeoutError, TriggerUnavailable, ApiError) as exc:
            reason = exc if isinstance(exc, TriggerUnavailable) else self._unreachable(exc)
            _log.warning("%s; deliveries get 503 until this is fixed", reason)

    async def close(self) -> None:
        """Stop superseding, close the client's connections and its threads."""
        if self._superseding is not None:
            self._superseding.cancel()
            await asyncio.gather(self._superseding, return_exceptions=True)
            self._superseding = None
        self._api.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    async def _resolve(self) -> UUID:
        if self._deployment_id is None:
            try:
                deployment = await self._io(self._api.read_deployment_by_name, self.deployment)
            except NotFound:
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
        self._creating += 1
        self._idle.clear()
        arrived = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._slots:
                    turn = time.monotonic()
                    deployment_id = await self._resolve()
                    run = await self._create(deployment_id, deploy)
                    _log.info(
                        "delivery %s: run %s after %.0f ms in the queue, %.0f ms to create",
                        deploy.delivery,
                        run.id,
                        (turn - arrived) * 1000,
                        (time.monotonic() - turn) * 1000,
                    )
        except NotFound:  # deleted since it was looked up: look it up again next time
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
        except ApiError as exc:
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

    async def _create(self, deployment_id: UUID, deploy: Deploy) -> FlowRun:
        """Create the run, asking again at once when Prefect is slow or busy.

        On SQLite a write whose snapshot went stale behind another writer (one of the server's own
        services) waits ~2 s for a lock it cannot get, then answers 503 "database is locked",
        while a fresh request goes through in a few tens of milliseconds. So when an attempt has
        not answered within `HEDGE_AFTER_S`, the same request is sent again beside it (at most
        `MAX_ATTEMPTS` at once) and the first answer wins; a transient refusal (the API's
        `TRANSIENT`), or up to `NO_ANSWER_RETRIES` times no answer, is asked again after
        0.05-0.4 s. All of it is safe: every attempt carries the delivery's idempotency key, so
        they all name the same run. The caller's deadline bounds the whole; an attempt left
        behind ends on its own request timeout.
        """

        def attempt() -> asyncio.Future[FlowRun]:
            return asyncio.ensure_future(
                self._io(
                    functools.partial(
                        self._api.create_flow_run_from_deployment,
                        tags=deploy.tags(),
                        idempotency_key=idempotency_key(deploy),
                    ),
                    deployment_id,
                    deploy.parameters(),
                )
            )

        running: set[asyncio.Future[FlowRun]] = set()
        refused = unanswered = 0
        try:
            while True:
                if len(running) < MAX_ATTEMPTS:
                    running.add(attempt())
                done, running = await asyncio.wait(
                    running, timeout=HEDGE_AFTER_S, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    error = task.exception()
                    if error is None:
                        return task.result()
                    if not isinstance(error, ApiError):
                        raise error
                    if error.status is None:
                        # No answer: a kept connection the server closed as it was reused (its
                        # keep-alive ran out) fails at once; a fresh one goes through. A server
                        # that answers nothing at all is said after NO_ANSWER_RETRIES.
                        unanswered += 1
                        if unanswered > NO_ANSWER_RETRIES:
                            raise error
                    elif error.status not in TRANSIENT:
                        raise error
                    _log.info(
                        "delivery %s: %s, asking again",
                        deploy.delivery,
                        f"Prefect answered {error.status}" if error.status else "no answer",
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

    # Superseding, in the background.

    def _supersede_for(self, run: FlowRun) -> None:
        ref = supersede.pushed_ref(run)
        if ref is None or run.deployment_id is None:
            return
        self._branches.add((run.deployment_id, ref))
        if self._superseding is None or self._superseding.done():
            self._superseding = asyncio.get_running_loop().create_task(self._supersede_all())

    async def _supersede_all(self) -> None:
        while self._branches:
            deployment_id, ref = self._branches.pop()
            try:
                await self._idle.wait()
                async with self._slots:
                    pushes = await self._io(supersede.branch_pushes, self._api, deployment_id, ref)
                for push, commit in supersede.superseded_waiting(pushes):
                    await self._idle.wait()  # answers first: a creation never waits for this
                    async with self._slots:
                        cancelled = await self._io(
                            supersede.cancel_if_waiting, self._api, push.run_id, commit
                        )
                    if cancelled:
                        _log.info("flow run %s (%s): %s", push.run_id, push.commit, supersede.message(commit))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the flow's own check still stops the older runs
                _log.warning(
                    "could not cancel the superseded runs of %s (%s: %s); each will cancel itself "
                    "when it gets the run slot",
                    ref,
                    type(exc).__name__,
                    exc,
                )

    async def wait_superseded(self) -> None:
        """Return once the background superseding has nothing left to do (tests, benchmarks)."""
        while self._superseding is not None and not self._superseding.done():
            await asyncio.shield(self._superseding)
