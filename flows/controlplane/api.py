"""The one adapter for the control plane's REST API, over the pipeline's one HTTP client.

Every caller of the API goes through it: the CLI and its follower, the webhook receiver (from
its worker threads), superseding, the run lifecycle and approval (`for_current_run` inside a
flow run). They need only a dozen calls; importing Prefect's client for them costs about a
second of start-up on each `make demo` and brings a second set of retry rules. This client
sends exactly those calls (the same paths and bodies Prefect's client sends) and returns the
small typed records of `records.py`. Prefect's own client stays where its runtime needs it
(the run context, `pause_flow_run`, artifacts) and for deploying prefect.yaml; this module never
imports it (but in `for_current_run`, which runs inside a flow run).

Authentication follows Prefect's settings (headers.py: `PREFECT_API_KEY` as a bearer token,
else `PREFECT_API_AUTH_STRING` (`user:password`) as basic auth). Like Prefect's client, a call that
got no answer or a transient refusal (a busy SQLite server answers 503, a proxy 502) is tried
again for up to `RETRY_S` (a caller with its own deadline, the receiver, asks for one attempt
and retries on the same `TRANSIENT` statuses itself); every call is safe to repeat (a run is
created with an idempotency key, so a repeated creation returns the same run).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import requests

from flows import http
from flows.clock import SYSTEM_CLOCK, Clock, Deadline, GaveUp, poll_until
from flows.controlplane import ControlPlaneError
from flows.controlplane.headers import API_VERSION, auth_headers, authorization, client_headers
from flows.controlplane.records import (
    Deployment,
    FlowRun,
    LogLine,
    RunState,
    Worker,
    flow_run,
    log_line,
)

__all__ = [
    "API_VERSION",
    "TRANSIENT",
    "ApiError",
    "ControlPlaneApi",
    "Deployment",
    "FlowRun",
    "LogLine",
    "NotFound",
    "RunState",
    "Worker",
    "auth_headers",
    "flow_run",
    "for_current_run",
    "log_line",
]

TIMEOUT_S = 30.0  # a busy SQLite server can take seconds for one write
RETRY_S = 20.0  # how long a transient failure is tried again
RETRY_POLL_S = 1.0
# The one set of transient refusals, for every caller of the API (the CLI, the follower, the
# webhook receiver, the flow's own calls): the server answers 503 for a retryable error
# ("database is locked"), 429 when rate-limited, a proxy 502, a slow request 408.
TRANSIENT = frozenset({408, 429, 502, 503})
SCAN_LIMIT = 200  # runs read by one filter: far more than ever wait for one branch


class ApiError(ControlPlaneError):
    """The control plane's API refused a call or did not answer; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """`status`: the HTTP status of the refusal, None when nothing answered."""
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    """The API has no such object (HTTP 404)."""


class ControlPlaneApi:
    """A synchronous client of one control plane's API (`api_url`, e.g. http://127.0.0.1:4200/api)."""

    def __init__(
        self,
        api_url: str,
        headers: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        retry_s: float = RETRY_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        """Talk to `api_url` with keep-alive connections; `headers` default to `auth_headers()`;
        `clock` times the retries. `retry_s` bounds the retries of a call (0: one attempt, for a
        caller with its own deadline), `timeout_s` each request."""
        self.api_url = api_url.rstrip("/")
        self.headers = {
            "Accept": "application/json",
            **client_headers(),
            **(auth_headers() if headers is None else headers),
        }
        self.clock = clock
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        # One keep-alive session per thread (a session is not shared between threads): the
        # receiver calls from a few worker threads, everything else from one.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        """This thread's keep-alive session."""
        current: requests.Session | None = getattr(self._local, "session", None)
        if current is None:
            current = http.session()
            self.session = current
        return current

    @session.setter
    def session(self, value: requests.Session) -> None:
        self._local.session = value
        with self._sessions_lock:
            self._sessions.append(value)

    def bounded(self, seconds: float) -> ControlPlaneApi:
        """A client of the same server whose calls give up within about `seconds` (e.g. after Ctrl-C)."""
        return ControlPlaneApi(
            self.api_url, self.headers, self.clock, retry_s=seconds, timeout_s=max(seconds, 0.5)
        )

    def __enter__(self) -> ControlPlaneApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def call(self, method: str, path: str, body: Any | None = None) -> Any:
        """One call; its JSON answer (None when empty). Raises `NotFound` on 404, `ApiError` otherwise.

        No answer or a transient refusal (see TRANSIENT) is tried again every RETRY_POLL_S for
        up to the client's `retry_s`; the last one is then the error (its `status` None when
        nothing answered, else the refusal's).
        """
        url = f"{self.api_url}{path}"
        last: list[http.Answer] = []

        def settled(_: Deadline) -> http.Answer | None:
            answer = http.request(
                method,
                url,
                timeout=self.timeout_s,
                headers=self.headers,
                json_body=body,
                session=self.session,
            )
            last[:] = [answer]
            return None if answer.status is None or answer.status in TRANSIENT else answer

        settled_answer = poll_until(settled, self.retry_s, RETRY_POLL_S, clock=self.clock)
        # transient failures that lasted `retry_s`: the last answer is reported
        answer = last[0] if isinstance(settled_answer, GaveUp) else settled_answer
        if answer.status is None:
            tried = f" for {self.retry_s:.0f}s" if self.retry_s >= 1 else ""
            raise ApiError(
                f"the control plane's API at {self.api_url} did not answer {method} {path}{tried}: "
                f"{answer.error}; `deliverypipeline server status` shows the server"
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

    def create_flow_run_from_deployment(
        self,
        deployment_id: UUID,
        parameters: Mapping[str, Any],
        *,
        tags: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> FlowRun:
        """A new Scheduled run of the deployment with `parameters` (the deployment's fill the rest)
        and `tags`. The same `idempotency_key` (default: a new one, so a retried call returns the
        same run) returns the run created the first time."""
        body: dict[str, Any] = {
            "parameters": dict(parameters),
            "state": {"type": "SCHEDULED", "name": "Scheduled"},
            "idempotency_key": idempotency_key or str(uuid4()),
        }
        if tags:
            body["tags"] = list(tags)
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

    def read_flow_runs(
        self, deployment_id: UUID, tags: Sequence[str] = (), limit: int = SCAN_LIMIT
    ) -> list[FlowRun]:
        """The deployment's runs carrying all of `tags`, newest expected start first, at most `limit`."""
        runs: dict[str, Any] = {"deployment_id": {"any_": [str(deployment_id)]}}
        if tags:
            runs["tags"] = {"all_": list(tags)}
        body = {"flow_runs": runs, "sort": "EXPECTED_START_TIME_DESC", "limit": limit}
        return [flow_run(data) for data in self.call("POST", "/flow_runs/filter", body)]

    def set_flow_run_state(self, run_id: UUID, state: RunState, force: bool = False) -> str:
        """Propose `state` for the run (`force`: past the orchestration rules, e.g. Crashed); the
        server's verdict: ACCEPT, REJECT, ABORT or WAIT."""
        body = {"state": {"type": state.type, "name": state.name, "message": state.message}, "force": force}
        answer = self.call("POST", f"/flow_runs/{run_id}/set_state", body)
        return str(answer.get("status", "")) if isinstance(answer, dict) else ""

    def rename_flow_run(self, run_id: UUID, name: str) -> None:
        """Give the run a new name (shown in the UI)."""
        self.call("PATCH", f"/flow_runs/{run_id}", {"name": name})

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


def for_current_run() -> ControlPlaneApi:
    """A client of the server the current process reports to, from Prefect's settings.

    For the flow's own calls (superseding, renaming, approval): the worker gives the flow run
    `PREFECT_API_URL` (a test harness sets it in Prefect's settings). Only here is Prefect imported.
    """
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    if not api.url:
        raise ControlPlaneError("no Prefect API URL in this process's settings: set PREFECT_API_URL")
    key = api.key.get_secret_value() if api.key is not None else None
    auth_string = api.auth_string.get_secret_value() if api.auth_string is not None else None
    return ControlPlaneApi(api.url, authorization(key, auth_string))
