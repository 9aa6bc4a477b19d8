"""The real pipeline flow, every branch, against a fake target: no Docker, no HTTP, one Prefect test server.

Checkout, unit tests and push are replaced by functions returning their results, build and smoke
test by tasks (run in the background, as the flow runs them); they are tested against Docker in
tests/flows/image and tests/flows/source. From `preflight` on, the flow's own tasks run against
`FakeTarget`, with the verification's HTTP checks answered from the fake and a fake zero-downtime
probe. Each test asserts what happened
to prod and how the run ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import pipeline as pipeline_module
from flows.config import Deadlines, PipelineConfig
from flows.image.build import BuiltImage
from flows.image.tasks import PushedImage
from flows.release import approval as approval_module
from flows.release import tasks as release_tasks
from flows.release import watch as watch_module
from flows.release.probe_stats import ProbeSummary, Sample, SwapMark, summarize
from flows.release.settings import AnalysisSettings, VerificationSettings
from flows.runs import lifecycle
from flows.source.tasks import Checkout, UnitTestsFailed
from flows.targets.base import LockHolder
from tests.flows.fakes import FakeTarget, http_check_of, paths_check_of

pytestmark = (
    pytest.mark.slow
)  # one Prefect test server and a dozen flow runs: in `make unit`, not the pipeline step

MAIN = Path(__file__).resolve().parents[2]
NEW = "v2"
RECOVERED_ONLY = [("lock", "recover"), ("unlock", "recover")]  # the target's lock, taken and let go


@dataclass
class FakeProbe:
    """Stands in for the zero-downtime probe; `failures` failed requests make a violation."""

    failures: int = 0
    started: bool = False
    swaps: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.started = True

    def mark_swap_start(self) -> None:
        self.swaps.append("start")

    def mark_swap_end(self) -> None:
        self.swaps.append("end")

    @property
    def swap(self) -> SwapMark | None:
        return SwapMark(1.0, 1.1) if self.swaps else None

    def now(self) -> float:
        return 3.0

    def samples(self) -> list[Sample]:
        ok = [Sample(0.1 * i, 0.002, True, "", "/health (application/json)") for i in range(20)]
        return ok + [Sample(2.0, 0.002, False, "HTTP 503", "/ (text/html)")] * self.failures

    def stop(self) -> ProbeSummary:
        return summarize("http://127.0.0.1:8080", self.samples(), None)


@dataclass
class World:
    """The fake target behind the flow, and what the flow did."""

    target: FakeTarget
    probe: FakeProbe
    config: PipelineConfig

    def run(self, **parameters: Any) -> Any:
        return pipeline_module.pipeline(
            repo=str(MAIN), ref="HEAD", target="local", config=self.config, return_state=True, **parameters
        )

    def prod_version(self) -> str | None:
        return self.target.serving("127.0.0.1:8080").version


def fast_config(**changes: Any) -> PipelineConfig:
    """Deadlines and the analysis window short enough for a unit test (the waits use real time)."""
    settings: dict[str, Any] = {
        "deadlines": Deadlines(
            preprod_free=1, ready=2, verify=0.5, swap=1, poll_interval=0.01, target_lock=1
        ),
        "analysis": AnalysisSettings(window=0.2, min_requests=20),
        "verification": VerificationSettings(consistent_answers=2),
    }
    settings.update(changes)
    return PipelineConfig(**settings)


@task(name="build image", cache_policy=NO_CACHE)
def built_image(source: Checkout, config: PipelineConfig) -> BuiltImage:
    """Stands in for the build step, which the flow starts in the background."""
    return BuiltImage(f"{config.image}:{source.version}", "sha256:ab")


@task(name="smoke test", cache_policy=NO_CACHE)
def passing_smoke_test(image: BuiltImage, version: str, deadline_s: float) -> None:
    """Stands in for the smoke test, which the flow submits after the build."""


@pytest.fixture
def world(prefect_harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    target = FakeTarget.pair(prod_version="v1", preprod_version="v0")
    probe = FakeProbe()
    source_dir = tmp_path / "checkout"
    source_dir.mkdir()
    (source_dir / "Dockerrun.aws.json").write_text((MAIN / "Dockerrun.aws.json").read_text())

    def checkout(repo: str, ref: str) -> Checkout:
        return Checkout(
            str(source_dir), repo, ref, "c0ffee" * 6 + "beef", "tree", NEW, "2026-12-01T00:00:00Z"
        )

    monkeypatch.setattr(pipeline_module, "checkout", checkout)
    monkeypatch.setattr(pipeline_module, "unit_tests", lambda source, deadline: None)
    monkeypatch.setattr(pipeline_module, "build_image", built_image)
    monkeypatch.setattr(pipeline_module, "smoke_test", passing_smoke_test)
    monkeypatch.setattr(
        pipeline_module, "push", lambda built, config: PushedImage(built.tag, built.image_id, None)
    )
    monkeypatch.setattr(release_tasks, "make_target", lambda name, config: target)
    monkeypatch.setattr(lifecycle, "make_target", lambda name, config: target)
    monkeypatch.setattr(release_tasks, "health_check", http_check_of(target))
    monkeypatch.setattr(release_tasks, "paths_check", paths_check_of(target))
    monkeypatch.setattr(watch_module, "probe_for", lambda target, config: probe)
    monkeypatch.setattr(watch_module, "PROBE_TAIL_S", 0.0)
    monkeypatch.setattr(watch_module, "PROBE_LEAD_S", 0.0)
    yield World(target, probe, fast_config())


def steps_of(state: Any) -> dict[str, str]:
    return dict(state.result()["steps"])


def test_a_good_release_goes_to_prod_through_every_step(world: World) -> None:
    state = world.run()

    assert state.is_completed(), state.message
    assert world.prod_version() == NEW and world.target.serving("127.0.0.1:8081").version == "v1"
    assert list(steps_of(state)) == [
        "preflight",
        "recover",
        "lock target",
        "release bundle",
        "pick preprod",
        "deploy",
        "wait until ready",
        "verify preprod",
        "approval",
        "canary",
        "swap",
        "verify prod",
        "analyse traffic",
    ]
    assert world.target.calls[:2] == [("lock", "recover"), ("unlock", "recover")]  # before the build
    assert [call[0] for call in world.target.calls[2:]] == [
        "lock",
        "register_version",
        "deploy",
        "swap",
        "unlock",
    ]
    assert world.probe.swaps == ["start", "end"]
    assert state.result()["probe"] == {"requests": 20, "failures": 0}


def test_the_version_already_live_is_a_quick_success(world: World) -> None:
    world.target.envs["node-1"] = world.target.envs["node-1"].__class__(
        "node-1", "127.0.0.1:8080", NEW, "Ready", "Green"
    )
    state = world.run()

    assert state.is_completed(), state.message
    assert "already live" in state.result()["outcome"]
    assert "deploy" not in steps_of(state) and "swap" not in steps_of(state)
    assert not any(call[0] == "swap" for call in world.target.calls)
    # prod is verified once the release lock is let go: a run killed while verifying it holds no
    # lock recorded as "release <version>" with prod on that version (never taken for a dead swap)
    locking = [call[0] for call in world.target.calls if call[0] in ("lock", "unlock")]
    assert locking[-1] == "unlock" and list(steps_of(state))[-1] == "verify prod"


def test_a_rejected_approval_leaves_prod_untouched(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        approval_module,
        "await_approval",
        lambda *args: approval_module.Decision(False, "rejected by a person"),
    )
    state = world.run(require_approval=True)

    assert state.is_failed()
    assert "not approved" in (state.message or "")
    assert world.prod_version() == "v1"
    assert not any(call[0] == "swap" for call in world.target.calls)


def test_an_approved_release_probes_prod_from_just_before_the_swap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    probing_at_approval: list[bool] = []

    def approve(*args: Any) -> Any:
        probing_at_approval.append(world.probe.started)
        return approval_module.Decision(True, "approved by a person")

    monkeypatch.setattr(approval_module, "await_approval", approve)
    state = world.run(require_approval=True)

    assert state.is_completed(), state.message
    assert probing_at_approval == [False]  # a person may take longer than the probe's time cap
    assert world.probe.started and world.probe.swaps == ["start", "end"]
    assert world.prod_version() == NEW


def test_the_run_is_named_after_the_version_it_checked_out(world: World) -> None:
    from prefect.client.orchestration import get_client

    state = world.run()

    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == f"deliverypipeline-{NEW}@c0ffeec0"  # a tag: the commit beside it
    assert state.result()["version"] == NEW and state.result()["commit"].startswith("c0ffee")


def test_a_page_failing_on_preprod_stops_the_release_before_the_swap(world: World) -> None:
    world.target.broken_versions = frozenset({NEW})
    state = world.run()

    assert state.is_failed()
    assert "user path / (text/html): HTTP 500" in (state.message or "")
    assert world.prod_version() == "v1"
    assert not any(call[0] == "swap" for call in world.target.calls)


def test_prod_failing_verification_is_swapped_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release_tasks, "prod_health_check", http_check_of(world.target, frozenset({NEW})))
    state = world.run()

    assert state.is_failed()
    assert "swapped back" in (state.message or "")
    assert world.prod_version() == "v1"
    assert [call for call in world.target.calls if call[0] == "swap"] == [
        ("swap", "node-2", "node-1"),
        ("swap", "node-1", "node-2"),
    ]


def test_real_traffic_failing_the_analysis_is_swapped_back_with_its_figures(world: World) -> None:
    world.target.requests_per_look = 30
    # Preprod's checks pass (the fake's paths answer 200 for v2) but the prod traffic is 5xx:
    # a fault that shows only under real traffic.
    original = world.target.traffic

    def traffic(environment: str) -> Any:
        counters = original(environment)
        if world.target.envs[environment].version == NEW:
            return counters.__class__(counters.requests, counters.requests, 0, 5.0)
        return counters

    world.target.traffic = traffic  # type: ignore[method-assign]
    state = world.run()

    assert state.is_failed()
    message = state.message or ""
    assert "failed the traffic analysis" in message and "5xx share 100.0 %" in message
    assert "swapped back" in message
    assert world.prod_version() == "v1"


def test_a_failed_swap_back_says_a_person_must_act(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release_tasks, "prod_health_check", http_check_of(world.target, frozenset({NEW})))
    world.target.fail_swap_after = 1
    state = world.run()

    assert state.is_failed()
    assert "swapping back failed too" in (state.message or "")
    assert "swap by hand" in (state.message or "")


def test_a_probe_violation_fails_the_run_after_the_release(world: World) -> None:
    world.probe.failures = 3
    state = world.run()

    assert state.is_failed()
    assert "3 of 23 probe requests to prod failed" in (state.message or "")
    assert world.prod_version() == NEW  # the release verified: prod keeps it, the run says so


def test_a_target_not_ready_fails_before_anything_is_built(world: World) -> None:
    world.target.problems = ["no environment named node-3 in application deliverypipeline"]
    state = world.run()

    assert state.is_failed()
    assert "no environment named node-3" in (state.message or "")
    assert world.target.calls == []


def test_failing_unit_tests_stop_the_run_after_the_build_beside_them_and_before_the_push(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    pushed: list[str] = []

    def failing_unit_tests(source: Checkout, deadline_s: float) -> None:
        raise UnitTestsFailed("unit tests failed: 1 failed (tests/test_x.py::test_broken)")

    @task(name="build image", cache_policy=NO_CACHE)
    def build(source: Checkout, config: PipelineConfig) -> BuiltImage:
        built.append(source.version)
        return BuiltImage(f"{config.image}:{source.version}", "sha256:ab")

    def push(image: BuiltImage, config: PipelineConfig) -> PushedImage:
        pushed.append(image.tag)
        return PushedImage(image.tag, image.image_id, None)

    monkeypatch.setattr(pipeline_module, "unit_tests", failing_unit_tests)
    monkeypatch.setattr(pipeline_module, "build_image", build)
    monkeypatch.setattr(pipeline_module, "push", push)
    state = world.run()

    assert state.is_failed()
    assert "1 failed (tests/test_x.py::test_broken)" in (state.message or "")
    assert built == [NEW] and pushed == []
    assert world.target.calls == RECOVERED_ONLY and world.prod_version() == "v1"


def test_a_failed_build_beside_passing_tests_stops_the_run_with_its_own_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    @task(name="build image", cache_policy=NO_CACHE)
    def broken_build(source: Checkout, config: PipelineConfig) -> BuiltImage:
        raise RuntimeError("the build failed at step 4/24: pip could not install plyvel")

    monkeypatch.setattr(pipeline_module, "build_image", broken_build)
    state = world.run()

    assert state.is_failed()
    assert "pip could not install plyvel" in (state.message or "")
    assert world.target.calls == RECOVERED_ONLY and world.prod_version() == "v1"


def test_a_target_locked_by_another_release_is_not_touched(world: World) -> None:
    world.target.lock_holder = LockHolder(
        "release v9", "run-other", 4242, "host", "2026-12-01T00:00:00+00:00"
    )
    state = world.run()

    assert state.is_failed()
    assert "release v9 (run run-other, pid 4242" in (state.message or "")
    assert not any(call[0] in ("deploy", "swap") for call in world.target.calls)


def test_canary_steps_shift_traffic_then_swap(world: World) -> None:
    world.config = fast_config(traffic_steps=[10, 50])
    state = world.run()

    assert state.is_completed(), state.message
    assert world.target.shares == [("node-2", 10), ("node-2", 50), ("node-2", 0)]
    assert world.prod_version() == NEW


def test_a_failing_canary_returns_to_zero_and_never_swaps(world: World) -> None:
    world.config = fast_config(traffic_steps=[10])
    original = world.target.traffic
    looks = [0]

    def traffic(environment: str) -> Any:
        counters = original(environment)
        if environment == "node-2":  # the canary's traffic: all 5xx
            looks[0] += 100
            return counters.__class__(looks[0], looks[0], 0, 5.0)
        return counters

    world.target.traffic = traffic  # type: ignore[method-assign]
    state = world.run()

    assert state.is_failed()
    assert "canary at 10 %" in (state.message or "")
    assert world.target.shares == [("node-2", 10), ("node-2", 0)]
    assert world.prod_version() == "v1"
    assert not any(call[0] == "swap" for call in world.target.calls)


def test_a_swap_that_fails_leaves_prod_untouched_and_says_so(world: World) -> None:
    world.target.fail_swap_after = 0  # the proxy refuses the swap itself
    state = world.run()

    assert state.is_failed()
    message = state.message or ""
    assert "the proxy refused the swap" in message and "the swap had not happened" in message
    assert world.prod_version() == "v1"
    assert not any(call[0] == "swap" for call in world.target.calls)


def test_a_rerun_after_a_kill_mid_deploy_removes_the_orphan_even_when_preprod_needs_no_deploy(
    world: World,
) -> None:
    # The killed run had put the new version on preprod, healthy, and died while retiring the old
    # container: the re-run deploys nothing, but what the killed run left still goes.
    world.target.envs["node-2"] = replace(world.target.envs["node-2"], version=NEW)
    world.target.orphans = ["app-node-2-v0"]
    world.target.interrupted = LockHolder(
        f"release {NEW}", "run-killed", 999, "host", "2026-12-01T00:00:00+00:00"
    )
    state = world.run()

    assert state.is_completed(), state.message
    assert ("reconcile", "app-node-2-v0") in world.target.calls
    assert not any(call[0] == "deploy" for call in world.target.calls)
    assert world.target.orphans == [] and world.prod_version() == NEW


def test_a_release_killed_after_its_swap_is_swapped_back_then_released_through_every_check(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The killed run had put v2 on prod (node-2) and died before verifying it; v1 still on node-1.
    world.target.swap("node-1", "node-2")
    world.target.envs["node-2"] = replace(world.target.envs["node-2"], version=NEW)
    world.target.envs["node-1"] = replace(world.target.envs["node-1"], version="v1")
    world.target.calls.clear()
    world.target.interrupted = LockHolder(
        f"release {NEW}", "run-killed", 999, "host", "2026-12-01T00:00:00+00:00"
    )
    checked_out = pipeline_module.checkout
    prod_at_checkout: list[str | None] = []

    def checkout(repo: str, ref: str) -> Checkout:
        prod_at_checkout.append(world.prod_version())
        return checked_out(repo, ref)

    monkeypatch.setattr(pipeline_module, "checkout", checkout)
    state = world.run()

    assert state.is_completed(), state.message
    assert prod_at_checkout == ["v1"]  # prod safe again before anything was built
    assert steps_of(state)["recover"] == "Completed"
    assert [c for c in world.target.calls if c[0] == "swap"] == [
        ("swap", "node-1", "node-2"),
        ("swap", "node-2", "node-1"),
    ]
    assert world.prod_version() == NEW  # released again, this time verified and analysed
    assert "analyse traffic" in steps_of(state)


def test_a_holder_that_died_since_the_recover_step_is_recovered_from_under_the_release_lock(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between this run's recover step and its lock, another release put v3 on prod and was killed.
    checked_out = pipeline_module.checkout

    def checkout(repo: str, ref: str) -> Checkout:
        world.target.swap("node-1", "node-2")
        world.target.envs["node-2"] = replace(world.target.envs["node-2"], version="v3")
        world.target.interrupted = LockHolder("release v3", "run-other", 998, "host", "2026-12-01T00:00:00")
        return checked_out(repo, ref)

    monkeypatch.setattr(pipeline_module, "checkout", checkout)
    state = world.run()

    assert state.is_completed(), state.message
    swaps = [call for call in world.target.calls if call[0] == "swap"]
    assert swaps == [("swap", "node-1", "node-2")] * 2 + [("swap", "node-2", "node-1")]
    recovered = world.target.calls.index(swaps[1], world.target.calls.index(swaps[0]) + 1)
    assert recovered < world.target.calls.index(("register_version", NEW))  # v3 swapped back first
    assert world.prod_version() == NEW and steps_of(state)["lock target"] == "Completed"
