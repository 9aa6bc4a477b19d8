"""The control plane's REST API, spoken over the pipeline's one HTTP client, without importing Prefect.

Every command that submits or follows a run needs only a dozen calls of the server's API;
importing Prefect's client for them costs about a second of start-up on each `make demo`. This
client sends exactly those calls (the same paths and bodies Prefect's client sends) and returns
small typed records. Creating the work pool and deploying prefect.yaml still use Prefect itself,
only when they are missing or changed.

Authentication follows Prefect's settings: `PREFECT_API_KEY` as a bearer token, else
`PREFECT_API_AUTH_STRING` (`user:password`) as basic auth. Like Prefect's client, a call that
got no answer or a transient refusal (a busy SQLite server answers 503, a proxy 502) is tried
again for up to `RETRY_S`; every call is safe to repeat (a run is created with an idempotency
key, so a repeated creation returns the same run).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version as installed_version
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

from flows import http
from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.controlplane import ControlPlaneError

TIMEOUT_S = 30.0  # a busy SQLite server can take seconds for one write
RETRY_S = 20.0  # how long a transient failure is tried again
RETRY_POLL_S = 1.0
# What Prefect's client retries: the server answers 503 for a retryable error ("database is locked").
TRANSIENT = frozenset({408, 429, 502, 503})
# The API version Prefect's client announces (prefect.client.constants.SERVER_API_VERSION; a test
# keeps the two equal). With the User-Agent the server knows a current client: for an unknown one
# it falls back to older rules (a cancelled Pending run would lose its concurrency lease).
API_VERSION = "0.8.4"


class ApiError(ControlPlaneError):
    """The control plane's API refused a call or did not answer; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """`status`: the HTTP status of the refusal, None when nothing answered."""
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    """The API has no such object (HTTP 404)."""


@dataclass(frozen=True)
class RunState:
    """A run's state: its type (SCHEDULED, RUNNING, COMPLETED...), its shown name and message."""

    type: str
    name: str
    message: str | None = None


@dataclass(frozen=True)
class FlowRun:
    """What the commands read of a flow run."""

    id: UUID
    name: str
    state: RunState | None
    infrastructure_pid: str | None = None

    @property
    def state_type(self) -> str:
        """Its state's type; a run the server gave no state yet is one just scheduled."""
        return self.state.type if self.state else "SCHEDULED"

    @property
    def state_name(self) -> str:
        """Its state's name as the UI shows it."""
        return self.state.name if self.state else "Scheduled"


@dataclass(frozen=True)
class LogLine:
    """One log line of a run; `task_run_id` is None for the flow's own lines."""

    timestamp: datetime
    level: int
    message: str
    task_run_id: UUID | None


@dataclass(frozen=True)
class Deployment:
    """A deployment: its id and the version it was deployed with."""

    id: UUID
    name: str
    version: str | None


@dataclass(frozen=True)
class Worker:
    """A worker the server knows for a pool, and whether it sees it polling (ONLINE)."""

    name: str
    status: str


def _state(data: Mapping[str, Any] | None) -> RunState | None:
    if not data:
        return None
    state_type = str(data.get("type", ""))
    return RunState(state_type, str(data.get("name") or state_type), data.get("message"))


def flow_run(data: Mapping[str, Any]) -> FlowRun:
    """A flow run from the API's JSON."""
    state = _state(data.get("state"))
    return FlowRun(UUID(data["id"]), data.get("name", ""), state, data.get("infrastructure_pid"))


def log_line(data: Mapping[str, Any]) -> LogLine:
    """A log line from the API's JSON."""
    task_run_id = data.get("task_run_id")
    return LogLine(
        datetime.fromisoformat(data["timestamp"]),
        int(data.get("level", 20)),
        data.get("message", ""),
        UUID(task_run_id) if task_run_id else None,
    )


def client_headers() -> dict[str, str]:
    """The headers by which Prefect's server recognises a current Prefect client."""
    prefect_version = installed_version("prefect")
    return {
        "User-Agent": f"prefect/{prefect_version} (API {API_VERSION})",
        "X-PREFECT-API-VERSION": API_VERSION,
    }


def auth_headers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Authorization header Prefect's client would send, from its settings (none for a local server)."""
    env = os.environ if environ is None else environ
    if key := env.get("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {key}"}
    if auth := env.get("PREFECT_API_AUTH_STRING"):
        return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    return {}


class ControlPlaneApi:
    """A synchronous client of one control plane's API (`api_url`, e.g. http://127.0.0.1:4200/api)."""

    def __init__(
        self, api_url: str, headers: Mapping[str, str] | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        """Talk to `api_url` with keep-alive connections; `headers` default to `auth_headers()`;
        `clock` times the retries."""
        self.api_url = api_url.rstrip("/")
        self.headers = {
            "Accept": "application/json",
            **client_headers(),
            **(auth_headers() if headers is None else headers),
        }
        self.session = http.session()
        self.clock = clock

    def __enter__(self) -> ControlPlaneApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept connections."""
        self.session.close()

    def call(self, method: str, path: str, body: Any | None = None) -> Any:
        """One call; its JSON answer (None when empty). Raises `NotFound` on 404, `ApiError` otherwise.

        No answer or a transient refusal (see TRANSIENT) is tried again every RETRY_POLL_S for
        up to RETRY_S; the last one is then the error.
        """
        url = f"{self.api_url}{path}"
        last: list[http.Answer] = []

        def settled(_: Deadline) -> http.Answer | None:
            answer = http.request(
                method, url, timeout=TIMEOUT_S, headers=self.headers, json_body=body, session=self.session
            )
            last[:] = [answer]
            return None if answer.status is None or answer.status in TRANSIENT else answer

        settled_answer = poll_until(settled, RETRY_S, RETRY_POLL_S, clock=self.clock)
        # transient failures that lasted RETRY_S: the last answer is reported
        answer = last[0] if isinstance(settled_answer, GaveUp) else settled_answer
        if answer.status is None:
            raise ApiError(
                f"the control plane's API at {self.api_url} did not answer {method} {path} for "
                f"{RETRY_S:.0f}s: {answer.error}; `deliverypipeline server status` shows the server"
            )
        if answer.status == 404:
            raise NotFound(f"{method} {path}: not found on {self.api_url}", 404)
        if answer.status >= 300:
            detail = answer.body.decode(errors="replace").strip()[:300]
            raise ApiError(
                f"the control plane's API refused {method} {path}: HTTP {answer.status} {detail}",
                answer.status,
            )
        if not answer.body:
            return None
        data = answer.json()
        if data is None:
            raise ApiError(
                f"the control plane's API answered {method} {path} with something that is not JSON: "
                f"{answer.body[:200]!r}; is {self.api_url} a Prefect server's API (it ends in /api)?"
            )
        return data

    # --- deployments and runs -----------------------------------------------------------------

    def read_deployment_by_name(self, name: str) -> Deployment:
        """The deployment `<flow>/<deployment>`; `NotFound` when it does not exist."""
        flow, _, deployment = name.partition("/")
        data = self.call("GET", f"/deployments/name/{quote(flow, safe='')}/{quote(deployment, safe='')}")
        return Deployment(UUID(data["id"]), data.get("name", deployment), data.get("version"))

    def create_flow_run_from_deployment(self, deployment_id: UUID, parameters: Mapping[str, Any]) -> FlowRun:
        """A new Scheduled run of the deployment with `parameters` (the deployment's fill the rest)."""
        body = {
            "parameters": dict(parameters),
            "state": {"type": "SCHEDULED", "name": "Scheduled"},
            "idempotency_key": str(uuid4()),  # a retried creation returns the same run
        }
        return flow_run(self.call("POST", f"/deployments/{deployment_id}/create_flow_run", body))

    def read_flow_run(self, run_id: UUID) -> FlowRun:
        """One flow run."""
        return flow_run(self.call("GET", f"/flow_runs/{run_id}"))

    def read_flow_runs_in_pool(self, pool: str, state_types: Iterable[str]) -> list[FlowRun]:
        """The runs of `pool`'s deployments whose state is one of `state_types`."""
        body = {
            "flow_runs": {"state": {"type": {"any_": list(state_types)}}},
            "work_pools": {"name": {"any_": [pool]}},
        }
        return [flow_run(data) for data in self.call("POST", "/flow_runs/filter", body)]

    def set_flow_run_state(self, run_id: UUID, state: RunState, force: bool = False) -> None:
        """Propose `state` for the run (`force`: past the orchestration rules, e.g. Crashed)."""
        body = {"state": {"type": state.type, "name": state.name, "message": state.message}, "force": force}
        self.call("POST", f"/flow_runs/{run_id}/set_state", body)

    def read_logs(self, run_id: UUID, limit: int, offset: int) -> list[LogLine]:
        """A page of the run's log lines, oldest first."""
        body = {
            "logs": {"flow_run_id": {"any_": [str(run_id)]}},
            "sort": "TIMESTAMP_ASC",
            "limit": limit,
            "offset": offset,
        }
        return [log_line(data) for data in self.call("POST", "/logs/filter", body)]

    def read_task_run_name(self, task_run_id: UUID) -> str:
        """A task run's name (the step's); `NotFound` while the server has not recorded it yet."""
        return str(self.call("GET", f"/task_runs/{task_run_id}")["name"])

    # --- the pool and its workers --------------------------------------------------------------

    def read_work_pool(self, name: str) -> dict[str, Any]:
        """The work pool `name`; `NotFound` when it does not exist."""
        data: dict[str, Any] = self.call("GET", f"/work_pools/{quote(name, safe='')}")
        return data

    def create_work_pool(self, name: str, pool_type: str, base_job_template: Mapping[str, Any]) -> None:
        """Create a work pool; one that exists already (HTTP 409) is left as it is."""
        body = {"name": name, "type": pool_type, "base_job_template": dict(base_job_template)}
        try:
            self.call("POST", "/work_pools/", body)
        except ApiError as exc:
            if exc.status != 409:
                raise

    def read_workers_for_work_pool(self, pool: str) -> list[Worker]:
        """The workers the server knows for `pool`."""
        rows = self.call("POST", f"/work_pools/{quote(pool, safe='')}/workers/filter", {})
        return [Worker(row.get("name", ""), str(row.get("status") or "")) for row in rows]
