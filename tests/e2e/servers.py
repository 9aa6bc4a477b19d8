"""Real processes for end-to-end tests: a Prefect server, a process worker, the webhook receiver.

Each runs in its own process group with its own temporary PREFECT_HOME and a free port on
127.0.0.1, and is stopped (SIGTERM, then SIGKILL after a grace period) when its context exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PREFECT = str(VENV_BIN / "prefect")


# Runs a command with Ctrl-C's signal at its default, as a terminal's foreground job has it: a test
# run started in the background (`make test &`, some CI runners) ignores SIGINT, its children
# inherit that, and a shell that starts with SIGINT ignored can never trap it.
WITH_CTRL_C = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
]


def prefect_env(home: Path, api_url: str | None, **extra: str) -> dict[str, str]:
    """An environment isolated from ~/.prefect, talking to `api_url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def api_post(url: str, body: dict[str, object], timeout_s: float = 30) -> httpx.Response:
    """POST to a Prefect API, answering its 503 again as Prefect's own client does.

    A Prefect server on SQLite answers 503 "database is locked" while another writer holds the
    database (a worker, a deploy); its clients are expected to retry. Returns the first other answer.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.post(url, json=body, timeout=10)
        if answer.status_code != 503 or time.monotonic() >= deadline:
            return answer
        time.sleep(0.5)


def stop(process: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    """Stop a process group: SIGTERM twice (a worker ignores the first), then SIGKILL."""
    if process.poll() is not None:
        return
    for _ in range(2):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s / 2)
            return
        except subprocess.TimeoutExpired:
            continue
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def background(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in its own process group, output to `log`, stopped on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, deadline_s: float) -> None:
    """Wait until `url` answers 200, failing with the log if the process dies or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"{process.args!r} exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not up within {deadline_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A real `prefect server start` on a free port with SQLite under `home`; yields the API URL."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with background(args, prefect_env(home, None), log) as process:
        wait_http(f"{api_url}/health", process, log, deadline_s=90)
        yield api_url


def run_cli(args: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout_s: float = 180) -> str:
    """Run a command to completion; its output, or an assertion error showing it."""
    done = subprocess.run(
        args, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{args} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def fresh_checkout(destination: Path) -> Path:
    """The files a clone of the working tree would have (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def committed_copy(destination: Path, tests_kept: tuple[str, ...] = ("tests/flows/source/",)) -> Path:
    """The working tree committed into a new repository (tag v1.0.0), the way a push would deliver it.

    Only the tests under `tests_kept` (and the package markers) stay, so the pipeline's unit-test
    step stays quick; the pipeline itself is what is under test.
    """
    fresh_checkout(destination)
    for path in sorted((destination / "tests").rglob("*.py"), reverse=True):
        relative = path.relative_to(destination).as_posix()
        folder = relative.rpartition("/")[0] + "/"
        # A conftest stays only above the kept tests: one elsewhere may import what goes here.
        above = path.name == "conftest.py" and any(kept.startswith(folder) for kept in tests_kept)
        if path.name == "__init__.py" or above or relative.startswith(tests_kept):
            continue
        path.unlink()
    identity = ["-c", "user.name=e2e", "-c", "user.email=e2e@localhost"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["commit", "-qm", "the project"],
        ["tag", "v1.0.0"],
    ):
        subprocess.run(["git", "-C", str(destination), *identity, *args], check=True, capture_output=True)
    return destination
