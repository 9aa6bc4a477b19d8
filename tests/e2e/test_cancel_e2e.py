"""A release cancelled while it runs, under a real process worker: the server starts its recovery,
which ends every step the run left open as Cancelled with the reason and writes the run's report.

A real Prefect server, a real `prefect worker` of a process pool, and a deployment of the UI test's
stand-in release (`tests.e2e.ui_runs`, mode `cancel`: it hangs in `swap`). The run is cancelled
the way `deliverypipeline run` cancels it after Ctrl-C (Cancelling, with its message); the worker
stops the process (SIGTERM: the engine ends the running step Crashed, "aborted by a termination
signal") and marks the run Cancelled. prefect.yaml's trigger on Cancelled after Cancelling starts
a run of the recovery deployment, which is then run here against a stand-in target.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from flows.clock import Deadline, poll_until
from flows.controlplane.api import ControlPlaneApi, RunState
from tests.e2e.servers import PREFECT, ROOT, background, prefect_env, prefect_server, run_cli

pytestmark = pytest.mark.docker  # a server and a worker: the integration suite

POOL = "cancel-e2e"
WHY = "cancelled with Ctrl-C by the command that started it"
DEPLOYMENT = f"""\
name: cancel-e2e
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: {ROOT}
deployments:
  - name: cancel
    entrypoint: tests/e2e/ui_runs.py:standin
    parameters:
      mode: cancel
    work_pool:
      name: {POOL}
      job_variables:
        command: python -m prefect.engine
"""


def _steps(api: ControlPlaneApi, run_id: object) -> dict[str, dict[str, Any]]:
    """The run's task runs by step name."""
    found = api.call("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [str(run_id)]}}})
    return {task["name"].rsplit("-", 1)[0]: task for task in found}


def test_a_release_cancelled_while_it_runs_ends_every_step_with_the_reason(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    with prefect_server(home) as api_url:
        env = prefect_env(home, api_url)
        (tmp_path / "prefect.yaml").write_text(DEPLOYMENT)
        run_cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], env)
        run_cli(
            [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", str(tmp_path / "prefect.yaml")],
            env,
            cwd=ROOT,
        )
        # The recovery's deployment with prefect.yaml's triggers (no pool: its runs are run below).
        run_cli([sys.executable, "-m", "tests.e2e.ui_runs", "deploy", str(ROOT)], env, cwd=ROOT)
        with ControlPlaneApi(api_url) as api:
            with background([PREFECT, "worker", "start", "--pool", POOL], env, tmp_path / "worker.log"):
                deployment = api.read_deployment_by_name("deliverypipeline/cancel")
                run = api.create_flow_run_from_deployment(deployment.id, {})

                def in_swap(_: Deadline) -> bool | None:
                    swap = _steps(api, run.id).get("swap")
                    return True if swap and swap["state_type"] == "RUNNING" else None

                def not_in_swap(_: Deadline) -> AssertionError:
                    return AssertionError((tmp_path / "worker.log").read_text()[-3000:])

                poll_until(in_swap, 180, 0.5, not_in_swap)
                api.set_flow_run_state(run.id, RunState("CANCELLING", "Cancelling", WHY))

                def cancelled(_: Deadline) -> str | None:
                    state = api.read_flow_run(run.id).state_type
                    return state if state in ("CANCELLED", "CRASHED", "FAILED", "COMPLETED") else None

                assert poll_until(cancelled, 90, 0.5, not_in_swap) == "CANCELLED"

            def recovery_started(_: Deadline) -> str | None:
                body = {"deployments": {"name": {"any_": ["crashed-release"]}}}
                runs = api.call("POST", "/flow_runs/filter", body)
                mine = [r["id"] for r in runs if r["parameters"]["crashed_run"].endswith(str(run.id))]
                return str(mine[0]) if mine else None

            def none_started(_: Deadline) -> AssertionError:
                return AssertionError(f"the server started no recovery of the cancelled run {run.id}")

            recovery = poll_until(recovery_started, 60, 1, none_started)
            assert _steps(api, run.id)["swap"]["state_type"] == "CRASHED"  # as the worker's SIGTERM left it
            run_cli([sys.executable, "-m", "tests.e2e.ui_runs", "recover", recovery], env, cwd=ROOT)

            steps = _steps(api, run.id)
            assert {name: s["state_type"] for name, s in steps.items() if s["state_type"] != "COMPLETED"} == {
                "swap": "CANCELLED"
            }
            assert WHY in steps["swap"]["state"]["message"]
            body = {
                "artifacts": {"flow_run_id": {"any_": [str(run.id)]}, "key": {"any_": ["release-report"]}}
            }
            reports = api.call("POST", "/artifacts/filter", {**body, "sort": "CREATED_DESC"})
            assert reports[0]["data"].startswith(f"# Cancelled: {WHY} in step `swap`\n"), reports[0]["data"]
