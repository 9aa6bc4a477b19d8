"""`PrefectTrigger` over a fake API: runs created one per delivery, transient refusals asked again,
superseded runs cancelled in the background; and the flow's half, `superseded_run`."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from flows.controlplane.api import ApiError, NotFound
from flows.controlplane.records import Deployment, FlowRun, RunState
from flows.webhook.payload import Deploy
from flows.webhook.supersede import superseded_run
from flows.webhook.trigger import PrefectTrigger, TriggerUnavailable

DEPLOYMENT = uuid4()


@dataclass
class FakeApi:
    """The receiver's calls of the API, on runs in memory; `refuse`: statuses answering creations first."""

    refuse: list[int | None] = field(default_factory=list)  # None: no answer
    runs: dict[UUID, FlowRun] = field(default_factory=dict)
    keys: dict[str, UUID] = field(default_factory=dict)
    creations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read_deployment_by_name(self, name: str) -> Deployment:
        if name != "deliverypipeline/local":
            raise NotFound(f"no {name}", 404)
        return Deployment(DEPLOYMENT, "local", None)

    def create_flow_run_from_deployment(
        self, deployment_id: UUID, parameters: dict[str, Any], *, tags: Any = (), idempotency_key: str = ""
    ) -> FlowRun:
        with self.lock:
            self.creations += 1
            if self.refuse:
                raise ApiError("busy", self.refuse.pop(0))
            if idempotency_key not in self.keys:
                run = FlowRun(
                    uuid4(), f"run-{len(self.runs)}", None, None, deployment_id, parameters, tuple(tags)
                )
                self.runs[run.id] = run
                self.keys[idempotency_key] = run.id
            return self.runs[self.keys[idempotency_key]]

    def read_flow_runs(self, deployment_id: UUID, tags: Any = (), limit: int = 200) -> list[FlowRun]:
        return [
            r for r in self.runs.values() if r.deployment_id == deployment_id and set(tags) <= set(r.tags)
        ]

    def read_flow_run(self, run_id: UUID) -> FlowRun:
        return self.runs[run_id]

    def set_flow_run_state(self, run_id: UUID, state: RunState, force: bool = False) -> str:
        run = self.runs[run_id]
        self.runs[run_id] = FlowRun(
            run.id, run.name, state, None, run.deployment_id, run.parameters, run.tags
        )
        return "ACCEPT"

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeApi:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def deploy(commit: str, before: str | None, delivery: str | None = None) -> Deploy:
    return Deploy("https://example.com/app.git", commit, "main", delivery or str(uuid4()), before)


def sha(n: int) -> str:
    return f"{n:040x}"


async def _deliver(trigger: PrefectTrigger, *pushes: Deploy) -> list[str]:
    await trigger.start()
    try:
        runs = await asyncio.gather(*(trigger(push) for push in pushes))
        await trigger.wait_superseded()
        return [run.flow_run_id for run in runs]
    finally:
        await trigger.close()


def _trigger(api: FakeApi, **options: Any) -> PrefectTrigger:
    return PrefectTrigger("deliverypipeline/local", "http://127.0.0.1:4200/api", api=api, **options)  # type: ignore[arg-type]


def test_a_burst_creates_one_run_per_delivery_and_cancels_all_but_the_newest_push() -> None:
    api = FakeApi()
    pushes = [deploy(sha(n), sha(n - 1) if n else None) for n in range(6)]
    run_ids = asyncio.run(_deliver(_trigger(api), *reversed(pushes)))  # arriving newest first
    assert len(set(run_ids)) == 6
    states = {run.parameters["ref"]: run.state for run in api.runs.values()}
    assert states[sha(5)] is None  # still scheduled: it releases
    for n in range(5):
        assert states[sha(n)] == RunState("CANCELLED", "Cancelled", f"superseded by {sha(5)}")


def test_a_redelivery_returns_the_run_created_the_first_time() -> None:
    api = FakeApi()
    push = deploy(sha(1), sha(0), delivery="same")
    first, again = asyncio.run(_deliver(_trigger(api), push, push))
    assert first == again
    assert len(api.runs) == 1


def test_transient_refusals_are_asked_again_within_the_deadline() -> None:
    api = FakeApi(refuse=[503, 429, 502])
    [run_id] = asyncio.run(_deliver(_trigger(api), deploy(sha(1), sha(0))))
    assert UUID(run_id) in api.runs
    assert api.creations == 4


def test_a_kept_connection_the_server_closed_is_asked_again_on_a_new_one() -> None:
    api = FakeApi(refuse=[None])  # "Connection reset by peer" on a reused connection
    [run_id] = asyncio.run(_deliver(_trigger(api), deploy(sha(1), sha(0))))
    assert UUID(run_id) in api.runs
    assert api.creations == 2


def test_a_server_that_never_answers_gets_503_after_a_few_tries_not_at_the_deadline() -> None:
    api = FakeApi(refuse=[None, None, None, None])
    with pytest.raises(TriggerUnavailable, match="unreachable or failed"):
        asyncio.run(_deliver(_trigger(api), deploy(sha(1), sha(0))))
    assert api.creations == 3


def test_a_refusal_that_is_not_transient_answers_503_with_the_reason() -> None:
    api = FakeApi(refuse=[422])
    with pytest.raises(TriggerUnavailable, match="busy"):
        asyncio.run(_deliver(_trigger(api), deploy(sha(1), sha(0))))


def test_an_unknown_deployment_says_how_to_deploy_it() -> None:
    trigger = PrefectTrigger("deliverypipeline/nowhere", "http://127.0.0.1:4200/api", api=FakeApi())  # type: ignore[arg-type]
    with pytest.raises(TriggerUnavailable, match="'deliverypipeline/nowhere' not found"):
        asyncio.run(_deliver(trigger, deploy(sha(1), sha(0))))


class NoHistory:
    def is_ancestor(self, older: str, newer: str) -> bool | None:
        return None

    def commit_of(self, name: str) -> str | None:
        return {"v1.0-1-gabc": sha(3)}.get(name)


def test_the_flows_half_reads_the_branchs_pushes_then_prods_version() -> None:
    api = FakeApi()
    asyncio.run(_deliver(_trigger(api, supersede=False), deploy(sha(2), sha(1)), deploy(sha(3), sha(2))))
    by_commit = {run.parameters["ref"]: run.id for run in api.runs.values()}
    asked: list[str] = []

    def prod() -> str | None:
        asked.append("prod")
        return "v1.0-1-gabc"

    assert superseded_run(api, by_commit[sha(2)], lambda repo: NoHistory(), prod) == sha(3)  # type: ignore[arg-type]
    assert asked == []  # a newer push decided it: the target was not asked
    assert superseded_run(api, by_commit[sha(3)], lambda repo: NoHistory(), prod) == sha(3)  # type: ignore[arg-type]
    assert asked == ["prod"]  # prod serves it already
    by_hand = api.create_flow_run_from_deployment(DEPLOYMENT, {"ref": sha(1)}, idempotency_key="hand")
    assert superseded_run(api, by_hand.id, lambda repo: NoHistory(), prod) is None  # type: ignore[arg-type]
