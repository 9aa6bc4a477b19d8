"""The release as people see it in the Prefect UI, looked at in headless Chromium.

A real Prefect server (its UI on) holds the pipeline's deployment and a completed, a failed and a
crashed run of the stand-in (`tests.e2e.ui_runs`, whose artifacts come from the real renderers).
The test opens their pages and the Run form as a person would, and checks what that person looks
for: the step names, the report's sections, the charts loaded as pictures, no table cell cut at its
edge, the crash reason, and the form's Submit button close under the release choices (the
configuration one field, not laid out setting by setting: the whole form was ~6,700 px tall).
Screenshots of each page are kept in the test's directory (and in DELIVERY_UI_SCREENSHOTS, when
set) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import Browser, chromium
from tests.e2e.servers import ROOT, api_post, background, prefect_env, wait_http
from tests.support import free_port

pytestmark = pytest.mark.docker  # a server and a browser: the integration suite

VERSION = "v1.4.0-3-g0a1b2c3d"
WIDTH, HEIGHT = 1440, 1080  # a full-HD screen's browser window

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
    """A Prefect server with its UI, the deployment and the three runs; their ids and addresses."""
    home = tmp_path_factory.mktemp("prefect-ui")
    port = free_port()
    base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    server_env = prefect_env(home, None, PREFECT_UI_ENABLED="true", PREFECT_UI_API_URL=api)
    args = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1"]
    with background([*args, "--port", str(port)], server_env, home / "server.log") as server:
        wait_http(f"{api}/health", server, home / "server.log", deadline_s=180)
        env = prefect_env(home, api)
        made = {mode: _make(mode, env) for mode in ("deploy", "completed", "failed")}
        _make("crash", env, expect_killed=True)
        made["crash"] = _crashed(api)
        yield {"base": base, "api": api, "shots": home, **made}


def _make(mode: str, env: dict[str, str], expect_killed: bool = False) -> str:
    command = [sys.executable, "-m", "tests.e2e.ui_runs", mode]
    if mode == "deploy":
        command.append(str(ROOT))
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


def test_a_crashed_run_shows_why(browser: Browser, ui: dict[str, Any]) -> None:
    browser.open(f"{ui['base']}/runs/flow-run/{ui['crash']}", "document.body.innerText.includes('Crashed')")
    _click_tab(browser, "Details")
    browser.wait("document.body.innerText.includes('exited with status code: -9')")
    _shot(browser, ui, "crashed-run")


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
          return {repo: top('repo'), ref: top('ref'), target: top('target'), config: top('config'),
                  submit: submit.getBoundingClientRect().bottom,
                  page: document.documentElement.scrollHeight,
                  inputs: [...document.querySelectorAll('input, textarea')].map(i => i.value)}
        })()"""
    )
    assert layout["repo"] < layout["ref"] < layout["target"] < layout["config"], layout
    assert layout["target"] < HEIGHT / 2, json.dumps(layout)  # what is chosen per release: at the top
    assert layout["submit"] - layout["config"] < HEIGHT / 2, layout  # the configuration: one field
    assert layout["submit"] < 1.5 * HEIGHT, layout  # Submit a short scroll away, not several screens
    assert str(ROOT) in layout["inputs"] and Path(ROOT).is_dir()  # the repo default is valid here
