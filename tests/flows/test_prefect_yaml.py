"""prefect.yaml: both release deployments on the process pool, one run at a time each (ENQUEUE), the
recovery deployment started by the server on a crashed release, deployable from a fresh checkout."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from flows.controlplane.deployments import VERSION_ENV
from tests.e2e.servers import PREFECT, fresh_checkout, prefect_env, prefect_server, run_cli

ROOT = Path(__file__).resolve().parents[2]
POOL = "deliverypipeline"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return data


def releases() -> dict[str, dict[str, Any]]:
    """The release deployments (of flows/pipeline.py), by name."""
    return {d["name"]: d for d in load()["deployments"] if d["entrypoint"] == "flows/pipeline.py:pipeline"}


def test_the_deployments_of_the_pipeline_one_per_target_run_on_the_process_pool() -> None:
    deployments = releases()
    assert set(deployments) == {"local", "aws", "swarm"}
    for name, deployment in deployments.items():
        assert deployment["entrypoint"] == "flows/pipeline.py:pipeline"
        assert deployment["work_pool"]["name"] == POOL
        # Queued, never overlapping; superseding cancels older waiting runs of a branch.
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        assert deployment["parameters"]["target"] == name
        assert deployment["parameters"]["ref"] == "HEAD"
        # The control plane's fingerprint: what tells it the server's deployments are its own.
        assert deployment["version"] == "{{ $" + VERSION_ENV + " }}"


def test_parameters_are_those_of_the_pipeline_flow() -> None:
    from flows.pipeline import pipeline
    from flows.webhook.payload import Deploy

    accepted = set(inspect.signature(pipeline.fn).parameters)
    in_the_form = set(pipeline.parameters.properties)
    for deployment in releases().values():
        assert set(deployment["parameters"]) <= accepted, deployment["name"]
        assert set(deployment["parameters"]) - in_the_form == {"target"}  # the deployment's own
    webhook = Deploy(repository="https://example.com/a.git", commit="0" * 40, branch="main", delivery="d")
    assert set(webhook.parameters()) <= accepted
    # The target and the webhook's own parameter are accepted though the Run form leaves them out.
    assert accepted - in_the_form == {"target", "pushed_ref"}
    assert pipeline.validate_parameters(webhook.parameters())["pushed_ref"] == "refs/heads/main"


def test_a_crashed_release_run_or_one_cancelled_while_it_ran_starts_the_recovery_with_its_id() -> None:
    from flows.recovery.flow import recover_release

    [recovery] = [d for d in load()["deployments"] if d["name"] == "crashed-release"]
    assert recovery["entrypoint"] == "flows/recovery/flow.py:recover_release"
    assert recovery["work_pool"]["name"] == POOL and "concurrency_limit" not in recovery
    crashed, cancelled = recovery["triggers"]
    assert crashed["expect"] == ["prefect.flow-run.Crashed"] and crashed["posture"] == "Reactive"
    assert "after" not in crashed
    # Cancelled after Cancelling, run by run: a run cancelled before it started (Scheduled ->
    # Cancelled) or one that cancelled itself (superseded: Running -> Cancelled) starts none.
    assert cancelled["after"] == ["prefect.flow-run.Cancelling"]
    assert cancelled["expect"] == ["prefect.flow-run.Cancelled"] and cancelled["posture"] == "Reactive"
    assert cancelled["for_each"] == ["prefect.resource.id"] and cancelled["within"] >= 600
    release_flow = {"prefect.resource.role": "flow", "prefect.resource.name": "deliverypipeline"}
    for trigger in (crashed, cancelled):
        assert trigger["match_related"] == release_flow
        assert trigger["parameters"] == {"crashed_run": "{{ event.resource.id }}"}
        assert set(trigger["parameters"]) == set(recover_release.parameters.properties)


def test_runs_start_in_the_checkout_recorded_at_deploy_time() -> None:
    config = load()
    [build] = config["build"]
    assert build["prefect.deployments.steps.run_shell_script"]["id"] == "checkout"
    [pull] = config["pull"]
    assert pull == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ checkout.stdout }}"}}


@pytest.mark.docker
def test_deploy_all_from_a_fresh_checkout_against_a_real_server(tmp_path: Path) -> None:
    checkout = fresh_checkout(tmp_path / "checkout").resolve()
    with prefect_server(tmp_path / "prefect-home") as api_url:
        env = prefect_env(tmp_path / "prefect-home", api_url)
        run_cli([PREFECT, "work-pool", "create", POOL, "--type", "process"], env)
        run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env, cwd=checkout)
        for name, target in (("local", "local"), ("aws", "aws")):
            answer = httpx.get(f"{api_url}/deployments/name/deliverypipeline/{name}", timeout=10)
            assert answer.status_code == 200, answer.text
            deployment = answer.json()
            assert deployment["work_pool_name"] == POOL
            limit = deployment["global_concurrency_limit"]
            assert limit is not None and limit["limit"] == 1, limit
            assert deployment["pull_steps"] == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(checkout)}}
            ]
            assert deployment["parameters"]["repo"] == str(checkout)
            assert deployment["parameters"]["target"] == target
            assert deployment["entrypoint"] == "flows/pipeline.py:pipeline"
            # The Run form: the release's choices, the config one field; no target, no pushed ref.
            form = deployment["parameter_openapi_schema"]["properties"]
            assert sorted(form, key=lambda field: form[field]["position"]) == [
                "repo",
                "ref",
                "require_approval",
                "notify_url",
                "config",
            ]
        # The recovery's two triggers are automations on the server, owned by its deployment.
        automations = httpx.post(f"{api_url}/automations/filter", json={}, timeout=10).json()
        triggers = {a["name"]: a["trigger"] for a in automations}
        assert triggers["recover a crashed release"]["expect"] == ["prefect.flow-run.Crashed"]
        cancelled = triggers["recover a cancelled release"]
        assert cancelled["after"] == ["prefect.flow-run.Cancelling"]
        assert cancelled["expect"] == ["prefect.flow-run.Cancelled"]
