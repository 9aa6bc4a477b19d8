"""The release as people see it in the Prefect UI, looked at in headless Chromium.

A real Prefect server (its UI on) holds the pipeline's deployment, the recovery's (with
prefect.yaml's triggers) and a completed, a failed, a crashed, a cancelled and a superseded run of
the stand-in (`tests.e2e.ui_runs`, whose artifacts come from the real renderers). The crashed and
the cancelled run start a recovery through the server's own triggers; each recovery run is then
run as a worker would run it, against a stand-in target. The test opens the pages and the Run form
as a person would, and checks what that person looks for: the step names, the report's sections,
the charts loaded as pictures, no table cell cut at its edge, the crash or cancel reason on the
run's own page and at the top of its report, every step of a cancelled run ended, and the form's
Submit button on the first screen of a 1920 x 1080 window (the form was ~6,700 px tall, then 1,386).
Screenshots of each page are kept in the test's directory (and in DELIVERY_UI_SCREENSHOTS, when
set) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.clock import Deadline, poll_until
from flows.recovery.decisions import OPEN_STATES
from tests.e2e.browser import Browser, chromium
from tests.e2e.servers import ROOT, api_post, background, prefect_env, wait_http
from tests.support import free_port

pytestmark = pytest.mark.docker  # a server and a browser: the integration suite

VERSION = "v1.4.0-3-g0a1b2c3d"
WIDTH, HEIGHT = 1920, 1080  # a full-HD screen's browser window
CANCELLED_BY = "cancelled in the UI by a person"

# Images whose picture loaded (a data: SVG the UI refused would have naturalWidth 0).
CHARTS = """[...document.images].filter(i => i.src.startsWith('data:image/svg+xml'))
  .map(i => ({loaded: i.complete && i.naturalWidth > 0, shown: i.getBoundingClientRect().width,
              room: i.parentElement.getBoundingClientRect().width, alt: i.alt}))"""
# Table cells whose text runs past their edge (the UI cuts it with an ellipsis).
CUT_CELLS = """[...document.querySelectorAll('td, .p-table-data')]
  .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.fail("chromium is not installed: `make host` (scripts/setup-host.sh) installs it")
    opened = Browser(executable, WIDTH, HEIGHT)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Prefect server with its UI, the two deployments, the five runs and the recoveries the server
    started for the crashed and the cancelled one (run here); their ids and addresses."""
    home = tmp_path_factory.mktemp("prefect-ui")
    port = free_port()
    base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    server_env = prefect_env(home, None, PREFECT_UI_ENABLED="true", PREFECT_UI_API_URL=api)
    args = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1"]
    with background([*args, "--port", str(port)], server_env, home / "server.log") as server:
        wait_http(f"{api}/health", server, home / "server.log", deadline_s=180)
        env = prefect_env(home, api)
        made = {mode: _make(mode, env) for mode in ("deploy", "completed", "failed", "superseded")}
        _make("crash", env, expect_killed=True)
        made["crash"] = _crashed(api)
        made["cancel"] = _cancelled(api, env, home)
        recoveries = {ended: _recovery_run(api, made[ended]) for ended in ("crash", "cancel")}
        for recovery in recoveries.values():
            _make("recover", env, argument=recovery)
        yield {"base": base, "api": api, "shots": home, "recoveries": recoveries, **made}


def _make(mode: str, env: dict[str, str], expect_killed: bool = False, argument: str | None = None) -> str:
    command = [sys.executable, "-m", "tests.e2e.ui_runs", mode]
    if mode == "deploy":
        command.append(str(ROOT))
    if argument is not None:
        command.append(argument)
    done = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if expect_killed:
        assert done.returncode == -9, done.stderr[-3000:]
        return ""
    assert done.returncode in (0, 1), done.stderr[-3000:]  # the failed run's process exits 1
    return done.stdout.strip().splitlines()[-1]


def _crashed(api: str) -> str:
    """Mark the killed run Crashed with the reason, as its worker does when the process dies."""
    answer = api_post(
        f"{api}/flow_runs/filter", {"flow_runs": {"name": {"any_": ["deliverypipeline-crash"]}}}
    )
    run_id: str = answer.json()[0]["id"]
    state = {"type": "CRASHED", "name": "Crashed", "message": "Flow run process exited with status code: -9"}
    assert api_post(f"{api}/flow_runs/{run_id}/set_state", {"state": state, "force": True}).is_success
    return run_id


def _task_runs(api: str, run_id: str) -> list[dict[str, Any]]:
    found = api_post(f"{api}/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    runs: list[dict[str, Any]] = found.json()
    return runs


def _cancelled(api: str, env: dict[str, str], home: Path) -> str:
    """A run cancelled in `swap` as a person cancels it in the UI, and its worker stops it: Cancelling
    with the person's reason, the process killed (its grace period over), then Cancelled."""
    log = home / "cancel.log"
    named: dict[str, object] = {"flow_runs": {"name": {"any_": ["deliverypipeline-cancel"]}}}

    def in_swap(_: Deadline) -> str | None:
        assert process.poll() is None, log.read_text()[-3000:]
        for run in api_post(f"{api}/flow_runs/filter", named).json():
            swaps = [t for t in _task_runs(api, run["id"]) if t["name"].startswith("swap")]
            if swaps and swaps[0]["state_type"] == "RUNNING":
                return str(run["id"])
        return None

    def never_in_swap(_: Deadline) -> AssertionError:
        return AssertionError(f"the run never reached `swap`: {log.read_text()[-3000:]}")

    command = [sys.executable, "-m", "tests.e2e.ui_runs", "cancel"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            run_id = poll_until(in_swap, 120, 0.5, never_in_swap)
            cancelling = {"type": "CANCELLING", "name": "Cancelling", "message": CANCELLED_BY}
            assert api_post(f"{api}/flow_runs/{run_id}/set_state", {"state": cancelling}).is_success
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    cancelled = {"type": "CANCELLED", "name": "Cancelled", "message": "Flow run was cancelled successfully."}
    assert api_post(f"{api}/flow_runs/{run_id}/set_state", {"state": cancelled, "force": True}).is_success
    return run_id


def _recovery_runs(api: str) -> dict[str, str]:
    """The runs of `recover/crashed-release` by the run each recovers."""
    found = api_post(f"{api}/flow_runs/filter", {"deployments": {"name": {"any_": ["crashed-release"]}}})
    return {run["parameters"]["crashed_run"].rsplit(".", 1)[-1]: run["id"] for run in found.json()}


def _recovery_run(api: str, ended: str) -> str:
    """The recovery run the server's trigger started for the run `ended`."""

    def started(_: Deadline) -> str | None:
        return _recovery_runs(api).get(ended)

    def none_started(_: Deadline) -> AssertionError:
        return AssertionError(f"no recovery run was started for {ended} within 90 s: {_recovery_runs(api)}")

    return poll_until(started, 90, 1, none_started)


def _artifact(api: str, run_id: str, key: str) -> str:
    found = api_post(
        f"{api}/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": [key]}}}
    )
    return str(found.json()[0]["id"])


def _shot(browser: Browser, ui: dict[str, Any], name: str) -> None:
    path = Path(ui["shots"]) / f"{name}.png"
    browser.screenshot(path)
    if keep := os.environ.get("DELIVERY_UI_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _text(browser: Browser) -> str:
    return str(browser.evaluate("document.body.innerText"))


def _click_tab(browser: Browser, label: str) -> None:
    leaves = "[...document.querySelectorAll('*')].filter(e => !e.childElementCount)"
    tab = f"{leaves}.find(e => e.textContent.trim() === {label!r})"
    browser.wait(tab)
    browser.evaluate(f"{tab}.click()")


def test_a_completed_run_shows_its_steps_and_a_report_with_pictures(
    browser: Browser, ui: dict[str, Any]
) -> None:
    run = ui["completed"]
    browser.open(f"{ui['base']}/runs/flow-run/{run}", "document.body.innerText.includes('Completed')")
    _click_tab(browser, "Task Runs")
    browser.wait("document.body.innerText.includes('analyse traffic')")
    _shot(browser, ui, "completed-run")
    shown = _text(browser)
    for step in ("checkout", "unit tests", "wait until ready", "swap", "verify prod", "analyse traffic"):
        assert step in shown

    report = _artifact(ui["api"], run, "release-report")
    browser.open(
        f"{ui['base']}/artifacts/artifact/{report}", "document.body.innerText.includes('Zero downtime')"
    )
    browser.wait(f"({CHARTS}).every(c => c.loaded) && ({CHARTS}).length > 0")
    _shot(browser, ui, "completed-report")
    shown = _text(browser)
    assert f"deliverypipeline {VERSION}: released" in shown
    for section in ("Steps", "Traffic analysis", "Per user path (probe)", "Zero downtime"):
        assert section in shown
    charts = browser.evaluate(CHARTS)
    assert [c["alt"] for c in charts] == ["traffic analysis per step"]
    assert all(c["loaded"] and c["shown"] <= c["room"] + 1 for c in charts), charts
    assert browser.evaluate(CUT_CELLS) == []

    probe = _artifact(ui["api"], run, "zero-downtime")
    browser.open(
        f"{ui['base']}/artifacts/artifact/{probe}", "document.body.innerText.includes('Latency over time')"
    )
    browser.wait(f"({CHARTS}).length > 0 && ({CHARTS}).every(c => c.loaded)")
    _shot(browser, ui, "completed-probe")
    assert [c["alt"] for c in browser.evaluate(CHARTS)] == [
        "latency of prod over the release, the swap shaded"
    ]

    progress = httpx.get(
        f"{ui['api']}/artifacts/{_artifact(ui['api'], run, 'wait-until-ready')}", timeout=10
    ).json()
    assert progress["data"] == 100.0 and progress["description"].startswith("done: node-1 is ready")


def test_a_failed_run_has_a_report_titled_by_its_version_with_the_whole_reason(
    browser: Browser, ui: dict[str, Any]
) -> None:
    run = ui["failed"]
    browser.open(f"{ui['base']}/runs/flow-run/{run}", "document.body.innerText.includes('Failed')")
    _shot(browser, ui, "failed-run")
    report = _artifact(ui["api"], run, "release-report")
    browser.open(f"{ui['base']}/artifacts/artifact/{report}", "document.body.innerText.includes('Steps')")
    _shot(browser, ui, "failed-report")
    shown = _text(browser)
    assert f"deliverypipeline {VERSION}: FAILED" in shown and "?: FAILED" not in shown
    assert "health Red" in shown and "prod was not touched" in shown  # the reason, whole
    assert "prod now" in shown and "v1.3.9-0-gfedcba98" in shown
    assert browser.evaluate(CUT_CELLS) == []
    progress = httpx.get(
        f"{ui['api']}/artifacts/{_artifact(ui['api'], run, 'wait-until-ready')}", timeout=10
    ).json()
    assert progress["description"].startswith("stopped: node-1 not ready")


def _step_counts(browser: Browser) -> str:
    """The Task Runs tab's summary: `15 Task runs (14 Completed, 1 Crashed)`."""
    found = re.search(r"\d+ Task runs\s*\([^)]*\)", _text(browser))
    assert found, _text(browser)
    return " ".join(found.group(0).split())


def _open_steps(api: str, run_id: str) -> list[str]:
    return [
        f"{t['name']} {t['state_type']}" for t in _task_runs(api, run_id) if t["state_type"] in OPEN_STATES
    ]


def _report_text(browser: Browser, ui: dict[str, Any], run_id: str, shot: str) -> str:
    """The run's report as its artifact page shows it (the newest `release-report` of the run)."""
    found = api_post(
        f"{ui['api']}/artifacts/filter",
        {
            "artifacts": {"flow_run_id": {"any_": [run_id]}, "key": {"any_": ["release-report"]}},
            "sort": "CREATED_DESC",
        },
    )
    report = str(found.json()[0]["id"])
    browser.open(f"{ui['base']}/artifacts/artifact/{report}", "document.body.innerText.includes('Prod now')")
    _shot(browser, ui, shot)
    return _text(browser)


def test_a_crashed_run_shows_why_on_its_page_and_at_the_top_of_its_report(
    browser: Browser, ui: dict[str, Any]
) -> None:
    run = ui["crash"]
    why = "Flow run process exited with status code: -9 in step `swap`"
    browser.open(f"{ui['base']}/runs/flow-run/{run}", "document.body.innerText.includes('Crashed')")
    browser.wait(f"document.body.innerText.includes({why!r})")  # the Logs tab, where the page opens
    _shot(browser, ui, "crashed-run")
    _click_tab(browser, "Task Runs")
    browser.wait("document.body.innerText.includes('verify preprod')")
    _shot(browser, ui, "crashed-run-steps")
    assert _step_counts(browser) == "15 Task runs (14 Completed, 1 Crashed)"  # none left Running
    assert _open_steps(ui["api"], run) == []
    [swap] = [t for t in _task_runs(ui["api"], run) if t["name"].startswith("swap")]
    assert swap["state_type"] == "CRASHED" and "exited with status code: -9" in swap["state"]["message"]
    _click_tab(browser, "Details")
    browser.wait("document.body.innerText.includes('exited with status code: -9')")

    shown = _report_text(browser, ui, run, "crashed-report")
    first = shown[shown.index("Crashed:") :].splitlines()[0]
    assert first == "Crashed: Flow run process exited with status code: -9 in step swap", first
    assert "Prod now: node-2 at 127.0.0.1:8080: version v1.3.9-0-gfedcba98" in shown and "(verified)" in shown
    assert "swapped back the unverified swap of release" in shown


def test_a_cancelled_run_ends_every_step_it_left_open_and_says_who_cancelled_it(
    browser: Browser, ui: dict[str, Any]
) -> None:
    run = ui["cancel"]
    assert _open_steps(ui["api"], run) == []
    [swap] = [t for t in _task_runs(ui["api"], run) if t["name"].startswith("swap")]
    assert swap["state_type"] == "CANCELLED" and CANCELLED_BY in swap["state"]["message"]
    browser.open(f"{ui['base']}/runs/flow-run/{run}", "document.body.innerText.includes('Cancelled')")
    browser.wait(f"document.body.innerText.includes({CANCELLED_BY + ' in step `swap`'!r})")
    _shot(browser, ui, "cancelled-run")
    _click_tab(browser, "Task Runs")
    browser.wait("document.body.innerText.includes('verify preprod')")
    _shot(browser, ui, "cancelled-run-steps")
    assert _step_counts(browser) == "15 Task runs (14 Completed, 1 Cancelled)"  # none left Running

    shown = _report_text(browser, ui, run, "cancelled-report")
    first = shown[shown.index("Cancelled:") :].splitlines()[0]
    assert first == f"Cancelled: {CANCELLED_BY} in step swap", first
    assert "Prod now: node-2 at 127.0.0.1:8080: version v1.3.9-0-gfedcba98" in shown


def test_only_a_crash_or_a_cancel_while_running_starts_a_recovery(ui: dict[str, Any]) -> None:
    # The completed, the failed and the superseded run (Running -> Cancelled, it cancelled itself)
    # start none.
    assert set(_recovery_runs(ui["api"])) == {ui["crash"], ui["cancel"]}
    superseded = httpx.get(f"{ui['api']}/flow_runs/{ui['superseded']}", timeout=10).json()
    assert superseded["state_type"] == "CANCELLED"


def test_the_run_form_puts_the_release_choices_first_and_submit_within_a_screen(
    browser: Browser, ui: dict[str, Any]
) -> None:
    browser.open(
        f"{ui['base']}/deployments/deployment/{ui['deploy']}/run",
        "[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Submit')",
    )
    _shot(browser, ui, "run-form")
    layout = browser.evaluate(
        """(() => {
          const top = t => { const e = [...document.querySelectorAll('label, span, div, p')]
            .find(e => e.childElementCount === 0 && e.innerText && e.innerText.trim().startsWith(t));
            return e ? e.getBoundingClientRect().top : null };
          const submit = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Submit');
          return {repo: top('repo'), ref: top('ref'), approval: top('require_approval'),
                  notify: top('notify_url'), config: top('config'), target: top('target'),
                  pushed_ref: top('pushed_ref'),
                  submit: submit.getBoundingClientRect().bottom,
                  inputs: [...document.querySelectorAll('input, textarea')].map(i => i.value)}
        })()"""
    )
    order = [layout[field] for field in ("repo", "ref", "approval", "notify", "config")]
    assert None not in order and order == sorted(order), layout  # what is chosen per release first
    assert layout["submit"] <= HEIGHT, layout  # Submit on the first screen: no scrolling
    # Not choices of the person: the deployment's own target (one deployment per target, named
    # in the page's title) and the webhook's pushed ref.
    assert layout["target"] is None and layout["pushed_ref"] is None, layout
    assert str(ROOT) in layout["inputs"] and Path(ROOT).is_dir()  # the repo default is valid here

    # Submitted as it stands, the run gets the defaults and the deployment's own target.
    browser.evaluate(
        "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Submit').click()"
    )
    browser.wait("!location.pathname.endsWith('/run')")
    runs = api_post(f"{ui['api']}/flow_runs/filter", {"deployments": {"id": {"any_": [ui["deploy"]]}}}).json()
    [submitted] = [run["parameters"] for run in runs]
    assert submitted["repo"] == str(ROOT) and submitted["target"] == "local" and submitted["ref"] == "HEAD"
