"""`ControlPlaneApi`: the calls it sends (paths, bodies, auth), the records it returns, its errors.

On a fake session; the calls against a real Prefect server are in test_controlplane_docker.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
import requests

from flows.controlplane.api import (
    API_VERSION,
    RETRY_POLL_S,
    RETRY_S,
    ApiError,
    ControlPlaneApi,
    FlowRun,
    LogLine,
    NotFound,
    RunState,
    Worker,
    auth_headers,
)
from tests.flows.fakes import FakeClock

API = "http://127.0.0.1:4200/api"
RUN_ID = uuid4()


@dataclass
class Reply:
    status_code: int
    body: Any = None
    raw: bytes | None = None  # a body that is not JSON
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass
class FakeSession:
    """Answers each call with the next reply; records (method, url, body, headers)."""

    replies: list[Reply | Exception]
    sent: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)

    def request(self, method: str, url: str, *, json: Any, headers: dict[str, str], **_: Any) -> Reply:
        self.sent.append((method, url, json, headers))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]  # the last one stays
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        pass


def _api(
    *replies: Reply | Exception, headers: dict[str, str] | None = None
) -> tuple[ControlPlaneApi, FakeSession]:
    api = ControlPlaneApi(API + "/", headers=headers or {}, clock=FakeClock())
    session = FakeSession(list(replies))
    api.session = session  # type: ignore[assignment]
    return api, session


RUN_JSON = {
    "id": str(RUN_ID),
    "name": "brave-run",
    "state": {"type": "RUNNING", "name": "Running", "message": None},
    "infrastructure_pid": "host:1234",
}


def test_a_run_of_a_deployment_is_found_by_name_then_created_scheduled_with_the_parameters() -> None:
    deployment_id = uuid4()
    api, session = _api(
        Reply(200, {"id": str(deployment_id), "name": "local", "version": "abc"}),
        Reply(201, {**RUN_JSON, "state": {"type": "SCHEDULED", "name": "Scheduled"}}),
    )
    deployment = api.read_deployment_by_name("deliverypipeline/local")
    assert (deployment.id, deployment.version) == (deployment_id, "abc")
    run = api.create_flow_run_from_deployment(deployment.id, {"ref": "abc123"})
    assert run == FlowRun(RUN_ID, "brave-run", RunState("SCHEDULED", "Scheduled"), "host:1234")
    (_, read_url, read_body, _), (_, create_url, create_body, _) = session.sent
    assert (read_url, read_body) == (f"{API}/deployments/name/deliverypipeline/local", None)
    assert create_url == f"{API}/deployments/{deployment_id}/create_flow_run"
    key = create_body.pop("idempotency_key")  # a retried creation returns the same run
    assert UUID(key) and create_body == {
        "parameters": {"ref": "abc123"},
        "state": {"type": "SCHEDULED", "name": "Scheduled"},
    }


def test_logs_are_read_a_page_at_a_time_oldest_first_and_become_lines() -> None:
    task_run_id = uuid4()
    api, session = _api(
        Reply(
            200,
            [
                {"timestamp": "2026-12-04T10:00:00+00:00", "level": 20, "message": "hi", "task_run_id": None},
                {
                    "timestamp": "2026-12-04T10:00:01+00:00",
                    "level": 40,
                    "message": "no",
                    "task_run_id": str(task_run_id),
                },
            ],
        )
    )
    lines = api.read_logs(RUN_ID, limit=200, offset=400)
    assert lines == [
        LogLine(datetime(2026, 12, 4, 10, tzinfo=UTC), 20, "hi", None),
        LogLine(datetime(2026, 12, 4, 10, 0, 1, tzinfo=UTC), 40, "no", task_run_id),
    ]
    assert session.sent[0][:3] == (
        "POST",
        f"{API}/logs/filter",
        {
            "logs": {"flow_run_id": {"any_": [str(RUN_ID)]}},
            "sort": "TIMESTAMP_ASC",
            "limit": 200,
            "offset": 400,
        },
    )


def test_a_state_is_proposed_with_its_type_name_message_and_force() -> None:
    api, session = _api(Reply(201, {"status": "ACCEPT"}))
    api.set_flow_run_state(RUN_ID, RunState("CANCELLING", "Cancelling", "Ctrl-C"))
    assert session.sent[0][:3] == (
        "POST",
        f"{API}/flow_runs/{RUN_ID}/set_state",
        {"state": {"type": "CANCELLING", "name": "Cancelling", "message": "Ctrl-C"}, "force": False},
    )


def test_the_active_runs_of_a_pool_and_its_workers() -> None:
    api, session = _api(Reply(200, [RUN_JSON]), Reply(200, [{"name": "w1", "status": "ONLINE"}]))
    assert api.read_flow_runs_in_pool("deliverypipeline", ["RUNNING", "PENDING"]) == [
        FlowRun(RUN_ID, "brave-run", RunState("RUNNING", "Running"), "host:1234")
    ]
    assert api.read_workers_for_work_pool("deliverypipeline") == [Worker("w1", "ONLINE")]
    assert [body for _, _, body, _ in session.sent] == [
        {
            "flow_runs": {"state": {"type": {"any_": ["RUNNING", "PENDING"]}}},
            "work_pools": {"name": {"any_": ["deliverypipeline"]}},
        },
        {},
    ]


def test_creating_a_pool_that_exists_already_is_not_an_error_but_other_refusals_are() -> None:
    api, _ = _api(Reply(409, {"detail": "exists"}), Reply(422, {"detail": "bad template"}))
    api.create_work_pool("deliverypipeline", "process", {"job_configuration": {}})
    with pytest.raises(ApiError, match="refused POST /work_pools/: HTTP 422"):
        api.create_work_pool("deliverypipeline", "process", {})


def test_404_is_not_found_and_no_answer_says_where_to_look_after_retrying() -> None:
    api, session = _api(Reply(404, {"detail": "Task run not found"}), requests.ConnectionError("refused"))
    with pytest.raises(NotFound):
        api.read_task_run_name(uuid4())
    said = r"at http://127.0.0.1:4200/api did not answer GET /flow_runs/\S+ for 20s: .*server status"
    with pytest.raises(ApiError, match=said):
        api.read_flow_run(RUN_ID)
    assert len(session.sent) == 1 + RETRY_S / RETRY_POLL_S + 1  # the 404 once; the rest until the deadline


def test_no_answer_or_a_busy_server_is_tried_again_and_a_lasting_refusal_is_the_error() -> None:
    busy = Reply(503, {"detail": "database is locked"})
    api, session = _api(requests.ConnectionError("refused"), busy, Reply(200, RUN_JSON))
    assert api.read_flow_run(RUN_ID).name == "brave-run"
    assert len(session.sent) == 3
    api, session = _api(busy)
    with pytest.raises(ApiError, match=r"refused GET /flow_runs/\S+: HTTP 503 .*database is locked"):
        api.read_flow_run(RUN_ID)
    assert api.clock.now() == RETRY_S


def test_a_run_without_a_state_and_a_state_without_a_name() -> None:
    api, _ = _api(
        Reply(200, {**RUN_JSON, "state": None}), Reply(200, {**RUN_JSON, "state": {"type": "PENDING"}})
    )
    assert api.read_flow_run(RUN_ID).state is None
    assert api.read_flow_run(RUN_ID).state == RunState("PENDING", "PENDING")


def test_auth_follows_prefects_settings_key_first_and_is_sent() -> None:
    assert auth_headers({}) == {}
    assert auth_headers({"PREFECT_API_KEY": "k1", "PREFECT_API_AUTH_STRING": "u:p"}) == {
        "Authorization": "Bearer k1"
    }
    assert auth_headers({"PREFECT_API_AUTH_STRING": "admin:pass"}) == {
        "Authorization": "Basic YWRtaW46cGFzcw=="
    }
    api, session = _api(Reply(200, RUN_JSON), headers={"Authorization": "Bearer k1"})
    api.read_flow_run(RUN_ID)
    assert session.sent[0][3]["Authorization"] == "Bearer k1"


def test_it_announces_itself_as_the_installed_prefects_client() -> None:
    import prefect
    from prefect.client.constants import SERVER_API_VERSION

    assert API_VERSION == SERVER_API_VERSION  # keep in step when Prefect is upgraded
    api, session = _api(Reply(200, RUN_JSON))
    api.read_flow_run(RUN_ID)
    headers = session.sent[0][3]
    # what Prefect's client sends, and the server parses the client's version from
    assert headers["User-Agent"] == f"prefect/{prefect.__version__} (API {SERVER_API_VERSION})"
    assert headers["X-PREFECT-API-VERSION"] == SERVER_API_VERSION


def test_a_server_error_is_said_at_once_and_an_answer_that_is_not_json_is_an_error() -> None:
    api, session = _api(Reply(500, {"detail": "Internal Server Error"}))
    with pytest.raises(ApiError, match="HTTP 500") as refused:
        api.read_flow_run(RUN_ID)
    assert refused.value.status == 500 and len(session.sent) == 1  # not a transient refusal
    api, _ = _api(Reply(200, raw=b"<html>hello</html>"))
    with pytest.raises(ApiError, match=r"not JSON: b'<html>hello</html>'; .* ends in /api"):
        api.read_flow_run(RUN_ID)


def test_a_run_is_read_with_its_deployment_parameters_tags_and_creation_time() -> None:
    deployment_id = uuid4()
    api, _ = _api(
        Reply(
            200,
            {
                **RUN_JSON,
                "deployment_id": str(deployment_id),
                "parameters": {"ref": "c" * 40, "pushed_ref": "refs/heads/main"},
                "tags": ["github-push", "branch:main"],
                "created": "2026-12-04T10:00:00+00:00",
            },
        )
    )
    run = api.read_flow_run(RUN_ID)
    assert (run.deployment_id, run.parameters["pushed_ref"], run.tags) == (
        deployment_id,
        "refs/heads/main",
        ("github-push", "branch:main"),
    )
    assert run.created == datetime(2026, 12, 4, 10, tzinfo=UTC)


def test_a_pushed_run_is_created_with_its_tags_and_the_deliverys_idempotency_key() -> None:
    deployment_id = uuid4()
    api, session = _api(Reply(201, RUN_JSON))
    api.create_flow_run_from_deployment(
        deployment_id, {"ref": "abc"}, tags=["github-push"], idempotency_key="github-delivery:1"
    )
    assert session.sent[0][2] == {
        "parameters": {"ref": "abc"},
        "state": {"type": "SCHEDULED", "name": "Scheduled"},
        "idempotency_key": "github-delivery:1",
        "tags": ["github-push"],
    }


def test_the_runs_of_a_deployment_with_tags_newest_first() -> None:
    deployment_id = uuid4()
    api, session = _api(Reply(200, [RUN_JSON]))
    assert [run.id for run in api.read_flow_runs(deployment_id, ["branch:main"])] == [RUN_ID]
    assert session.sent[0][:3] == (
        "POST",
        f"{API}/flow_runs/filter",
        {
            "flow_runs": {"deployment_id": {"any_": [str(deployment_id)]}, "tags": {"all_": ["branch:main"]}},
            "sort": "EXPECTED_START_TIME_DESC",
            "limit": 200,
        },
    )


def test_a_state_change_gives_the_servers_verdict_and_a_run_is_renamed() -> None:
    api, session = _api(Reply(201, {"status": "REJECT"}), Reply(204))
    assert api.set_flow_run_state(RUN_ID, RunState("CANCELLED", "Cancelled")) == "REJECT"
    api.rename_flow_run(RUN_ID, "app-v1.2-abc1234")
    assert session.sent[1][:3] == ("PATCH", f"{API}/flow_runs/{RUN_ID}", {"name": "app-v1.2-abc1234"})


def test_a_client_without_retries_asks_once_and_gives_the_refusals_status() -> None:
    api = ControlPlaneApi(API, headers={}, clock=FakeClock(), retry_s=0)
    session = FakeSession([Reply(503, {"detail": "database is locked"})])
    api.session = session  # type: ignore[assignment]
    with pytest.raises(ApiError) as refused:
        api.read_flow_run(RUN_ID)
    assert refused.value.status == 503 and len(session.sent) == 1
    quick = api.bounded(3)  # after Ctrl-C: the same server, calls bounded to a few seconds
    assert (quick.api_url, quick.retry_s, quick.timeout_s, quick.headers) == (API, 3, 3, api.headers)


def test_each_thread_has_its_own_session_and_close_closes_them_all() -> None:
    import threading

    api = ControlPlaneApi(API, headers={})
    sessions = [api.session]
    thread = threading.Thread(target=lambda: sessions.append(api.session))
    thread.start()
    thread.join()
    assert sessions[0] is api.session and sessions[1] is not sessions[0]
    api.close()
    assert api._sessions == []


def test_inside_a_flow_run_the_client_follows_prefects_settings() -> None:
    from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

    from flows.controlplane import ControlPlaneError
    from flows.controlplane.api import for_current_run

    remote = {PREFECT_API_URL: "http://10.0.0.1:4200/api", PREFECT_API_KEY: "k9"}
    with temporary_settings(updates=remote), for_current_run() as api:
        assert api.api_url == "http://10.0.0.1:4200/api"
        assert api.headers["Authorization"] == "Bearer k9"
    with (
        temporary_settings(updates={PREFECT_API_URL: None}),
        pytest.raises(ControlPlaneError, match="PREFECT_API_URL"),
    ):
        for_current_run()
