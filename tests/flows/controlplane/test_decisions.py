"""Pure decisions of the control plane: the server port, orphaned runs, exit codes, patience."""

from __future__ import annotations

import pytest

from flows.controlplane import decisions as d
from flows.controlplane.decisions import Port, Verdict


@pytest.mark.parametrize(
    ("port", "ours_alive", "verdict"),
    [
        (Port.PREFECT, True, Verdict.REUSE),
        (Port.PREFECT, False, Verdict.REUSE_OTHER),
        (Port.FREE, False, Verdict.START),
        (Port.FREE, True, Verdict.WAIT),  # our process starts, not listening yet
        (Port.OTHER, True, Verdict.WAIT),  # ours listens, API not ready yet
        (Port.OTHER, False, Verdict.TAKEN),  # another program holds the port
    ],
)
def test_what_to_do_about_the_server(port: Port, ours_alive: bool, verdict: Verdict) -> None:
    assert d.judge_server(port, ours_alive) is verdict


def test_a_recorded_pid_counts_only_if_it_is_still_a_prefect_server_or_worker() -> None:
    server = ["/v/bin/python", "/v/bin/prefect", "server", "start", "--host", "127.0.0.1", "--port", "4311"]
    assert d.is_ours(server, "server", 4311)
    assert not d.is_ours(server, "server", 4200)  # another port: not the one recorded
    assert not d.is_ours(server, "worker")
    assert not d.is_ours(["/usr/bin/sleep", "server"], "server")  # the pid was reused
    assert d.is_ours(["/v/bin/prefect", "worker", "start", "--pool", "deliverypipeline"], "worker")


@pytest.mark.parametrize(
    ("state", "pid", "alive", "orphan"),
    [
        ("RUNNING", "123", False, True),
        ("RUNNING", "123", True, False),  # the run's process outlived its worker: it ends by itself
        ("PENDING", None, False, True),  # the dead worker was still submitting it
        ("CANCELLING", "9", False, True),
        ("SCHEDULED", None, False, False),  # a new worker picks it up
        ("COMPLETED", "9", False, False),
    ],
)
def test_orphaned_runs(state: str, pid: str | None, alive: bool, orphan: bool) -> None:
    assert d.orphaned(state, pid, alive) is orphan


def test_exit_codes_tell_how_the_run_ended() -> None:
    assert d.exit_code("COMPLETED") == 0
    assert d.exit_code("FAILED") == 1
    assert d.exit_code("CRASHED") == 3
    assert d.exit_code("CANCELLED") == 4
    assert d.exit_code("CANCELLED", interrupted=True) == 130
    assert d.exit_code("COMPLETED", interrupted=True) == 0  # it finished before the cancel took


def test_a_busy_machine_gets_a_longer_bounded_wait_and_says_what_is_slow() -> None:
    assert d.startup_patience(0.5, 2).seconds == 90
    assert d.startup_patience(5.0, 2).seconds == 225
    assert d.startup_patience(50.0, 2).seconds == 300
    patience = d.startup_patience(4.0, 2)
    assert not patience.notices(14.9, 0) and patience.notices(15.0, 0) and not patience.notices(20, 1)
    message = d.slow_message("the Prefect server on http://127.0.0.1:4200", 31, patience, 4.0, 2)
    assert "the Prefect server on http://127.0.0.1:4200 is not answering yet after 31s" in message
    assert "load average 4.0 on 2 cores (the machine is busy)" in message
    assert "waiting up to 180s" in message


def test_a_worker_already_polling_the_pool_is_found_so_a_second_is_not_started() -> None:
    from flows.controlplane.api import Worker
    from flows.controlplane.worker import online_worker

    class Client:
        def __init__(self, workers: list[Worker]) -> None:
            self.workers = workers

        def read_workers_for_work_pool(self, pool: str) -> list[Worker]:
            return self.workers

    online = Worker("deliverypipeline-local", "ONLINE")
    offline = Worker("old", "OFFLINE")
    assert online_worker(Client([offline, online])) == "deliverypipeline-local"  # type: ignore[arg-type]
    assert online_worker(Client([offline])) is None  # type: ignore[arg-type]


def test_a_process_whose_checkout_or_interpreter_was_deleted_is_not_reused() -> None:
    on_disk = {"/work/b", "/work/b/.venv/bin/python"}
    record = {"pid": 1, "root": "/work/a", "python": "/work/a/.venv/bin/python"}
    assert d.missing_files(record, on_disk.__contains__) == "/work/a"
    here = {"pid": 1, "root": "/work/b", "python": "/work/b/.venv/bin/python"}
    assert d.missing_files(here, on_disk.__contains__) is None
    assert d.missing_files({"pid": 1}, on_disk.__contains__) is None  # an older record: taken as it is


@pytest.mark.parametrize(
    ("heartbeat_age", "running", "stale"),
    [
        (None, 10.0, False),  # just started: it has not polled yet
        (None, 120.0, True),  # running for minutes and never heard
        (20.0, 600.0, False),
        (91.0, 600.0, True),  # stopped polling (hung)
    ],
)
def test_a_worker_that_no_longer_polls_is_not_reused(
    heartbeat_age: float | None, running: float, stale: bool
) -> None:
    assert d.stale_worker(heartbeat_age, running, 90.0) is stale
