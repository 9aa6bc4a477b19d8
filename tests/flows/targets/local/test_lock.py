"""The release lock: a second holder waits, logs who holds it, then fails naming it; death frees it."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.clock import poll_until
from flows.config import PipelineConfig
from flows.targets.base import LockHolder
from flows.targets.local.errors import LocalTargetError, LockBusy
from flows.targets.local.lock import ReleaseLock
from flows.targets.local.settings import LocalSettings
from flows.targets.local.target import LocalTarget
from tests.flows.fakes import FakeClock

REPO = Path(__file__).resolve().parents[4]
ME = LockHolder("release v3", "run-b", os.getpid(), "here", "2026-12-01T10:05:00+00:00")


class NoDocker:
    """A Docker client stand-in that fails the test if any Docker call is made."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected Docker call: {name}")


def make(state_dir: Path) -> LocalTarget:
    return LocalTarget(PipelineConfig(local=LocalSettings(state_dir=state_dir)), client=NoDocker())


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flows.config import PipelineConfig
    from flows.targets.local.settings import LocalSettings
    from flows.targets.base import LockHolder
    from flows.targets.local.target import LocalTarget
    target = LocalTarget(PipelineConfig(local=LocalSettings(state_dir=Path(sys.argv[1]))), client=object())
    holder = LockHolder("release v2", "run-a", __import__("os").getpid(), "ci", "2026-12-01T10:00:00+00:00")
    with target.lock(holder, 5, print):
        time.sleep(300)
    """
)


@pytest.fixture
def holder_process(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the target's release lock (killed at the end)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "state")], cwd=REPO)
    lock_file = tmp_path / "state" / "release.lock"

    def recorded(_: object) -> bool | None:
        if process.poll() is not None:
            raise AssertionError(f"the holder process exited with {process.returncode}")
        return True if lock_file.exists() and lock_file.read_text() else None

    poll_until(recorded, 30, 0.05, lambda _: AssertionError("the holder never recorded itself"))
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@pytest.mark.slow  # a holder process, waited on
def test_a_second_holder_waits_then_fails_naming_the_holder(
    tmp_path: Path, holder_process: subprocess.Popen[bytes]
) -> None:
    target = make(tmp_path / "state")
    logs: list[str] = []
    started = time.monotonic()
    with pytest.raises(LockBusy) as caught, target.lock(ME, 1.0, logs.append):
        pytest.fail("acquired a lock another process holds")
    waited = time.monotonic() - started
    message = str(caught.value)
    assert isinstance(caught.value, LocalTargetError)
    assert f"held by release v2 (run run-a, pid {holder_process.pid} on ci" in message
    assert f"`kill {holder_process.pid}`" in message
    assert logs and logs[0].startswith(
        f"waiting for the target lock held by release v2 (run run-a, pid {holder_process.pid}"
    )
    assert 1.0 <= waited < 3.0


@pytest.mark.slow  # a holder process, waited on
def test_a_sigkilled_holder_frees_the_lock_at_once(
    tmp_path: Path, holder_process: subprocess.Popen[bytes]
) -> None:
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait(timeout=10)
    target = make(tmp_path / "state")
    started = time.monotonic()
    with target.lock(ME, 5.0, print) as interrupted:
        acquired = time.monotonic() - started
        assert target.release_lock.holder() == ME
    print(f"\nlock acquired {acquired * 1000:.0f} ms after its holder was SIGKILLed")
    assert acquired < 0.5
    assert interrupted is not None and interrupted.pid == holder_process.pid  # it died holding it
    assert target.release_lock.holder() is None  # the record is cleared on release
    with target.lock(ME, 1.0, print) as after_clean_release:
        assert after_clean_release is None  # a clean holder leaves nothing to recover


def test_the_short_locks_still_work_while_the_release_lock_is_held(tmp_path: Path) -> None:
    target = make(tmp_path / "state")
    bundle = {"AWSEBDockerrunVersion": "1", "Image": {"Name": "127.0.0.1:5000/app:1"}}
    with target.lock(ME, 1.0, print):
        target.register_version("1", bundle)  # state.lock inside
        assert target.environments()[0].name == "node-1"
    with target.lock(ME, 1.0, print):  # released, so taken again at once
        pass


def test_clean_up_before_unlocking_runs_with_the_record_emptied_and_the_lock_still_held(
    tmp_path: Path,
) -> None:
    lock = ReleaseLock(tmp_path / "release.lock")
    seen: list[tuple[LockHolder | None, bool]] = []

    def clean_up() -> None:
        with (tmp_path / "release.lock").open() as other:  # another holder would still wait
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                free = True
            except BlockingIOError:
                free = False
        seen.append((lock.holder(), free))

    with lock.held(ME, 1.0, print, before_unlock=clean_up):
        assert lock.holder() == ME
    # killed during the clean-up, the holder would leave no record: its release was finished
    assert seen == [(None, False)]
    with lock.held(ME, 1.0, print) as interrupted:
        assert interrupted is None


def test_waiting_is_logged_every_few_seconds_until_the_deadline(tmp_path: Path) -> None:
    path = tmp_path / "release.lock"
    path.write_text("")
    with path.open("a") as other:  # another open file description: conflicts even in-process
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        clock = FakeClock()
        lock = ReleaseLock(path, clock=clock, poll_s=1.0)
        logs: list[str] = []
        with (
            pytest.raises(LockBusy, match="a process that has not recorded itself yet after 12s"),
            lock.held(ME, 12, logs.append),
        ):
            pytest.fail("acquired a held lock")
    assert [line.split("(")[-1] for line in logs] == [
        "0s of at most 12s)",
        "5s of at most 12s)",
        "10s of at most 12s)",
    ]
