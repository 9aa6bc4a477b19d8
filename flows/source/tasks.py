"""Steps 1-2 as Prefect tasks: check out one commit into a clean directory, run its fast tests.

The unit-test step runs the checked-out project's own tests (`-m "not docker"`) with this
interpreter; its summary becomes an artifact. Failing tests stop the run before anything is
built, and the step is never retried. Passing results are cached by source tree, so a re-run
of the same tree does not run them again.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext

from flows import steps
from flows.command import run_within
from flows.errors import SourceError
from flows.keys import short, unit_tests_key
from flows.source import workspace
from flows.source.artifact import publish_unit_tests
from flows.source.junit import JunitError, TestSummary, parse_junit
from flows.source.version import describe

WORK_DIR_ENV = "DELIVERYPIPELINE_WORK_DIR"
GIT_TIMEOUT_S = 120
# Variables of an outer pytest or Prefect run that must not leak into the checkout's tests.
_LEAKY_ENV = ("PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PREFECT_API_URL")


class CheckoutError(SourceError):
    """The repository or the commit could not be checked out."""


class UnitTestsFailed(SourceError):
    """The checked-out project's unit tests failed; nothing is built or deployed."""


@dataclass(frozen=True)
class Checkout:
    """One commit checked out in its own directory, with the version it builds as."""

    path: str
    repo: str
    ref: str
    commit: str
    tree: str
    version: str
    build_time: str


def work_root() -> Path:
    """Where checkouts go: `$DELIVERYPIPELINE_WORK_DIR`, else a directory under the system temp."""
    root = Path(os.environ.get(WORK_DIR_ENV) or Path(tempfile.gettempdir()) / "deliverypipeline-work")
    root.mkdir(parents=True, exist_ok=True)
    return root


def git(cwd: Path | None, *args: str) -> str:
    """Run git and return its output; failures raise CheckoutError with git's message."""
    command = ["git", *(["-C", str(cwd)] if cwd else []), *args]
    overdue = CheckoutError(f"`{' '.join(command)}` took over {GIT_TIMEOUT_S}s; is the remote reachable?")
    done = run_within(command, GIT_TIMEOUT_S, overdue)
    if done.returncode != 0:
        raise CheckoutError(f"`{' '.join(command)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def resolve_local(repo: str, ref: str) -> str | None:
    """The commit `ref` names in a local repository, None for a remote URL."""
    path = Path(repo)
    if not path.is_dir():
        return None
    return git(path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def _resolve_in_clone(clone: Path, ref: str) -> str:
    # The remote's branch first: a kept clone's own branches (and HEAD) are those of an earlier run.
    for candidate in (f"origin/{ref}", ref):
        try:
            return git(clone, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        except CheckoutError:
            continue
    raise CheckoutError(f"the repository has no commit, branch or tag named {ref!r}; check the ref")


def check_out(repo: str, ref: str, root: Path) -> Checkout:
    """Check out `ref` of `repo` (detached) into a work directory under `root`: a kept slot of the
    repository updated in place (see `flows.source.workspace`), or a fresh clone."""
    for what, value in (("repository", repo), ("ref", ref)):
        if not value or value.startswith("-"):
            # git would read a leading "-" as an option
            raise CheckoutError(f"the {what} {value!r} is not a path, URL or git ref; check the parameter")
    source = str(Path(repo).resolve()) if Path(repo).is_dir() else repo
    commit = resolve_local(source, ref)
    directory = workspace.take(root, source, short(commit or "remote"))
    try:
        kept = (directory / ".git").is_dir()
        try:
            commit = _check_out_in(directory, source, ref, commit)
        except CheckoutError:
            if not kept:
                raise
            # A kept clone git cannot use (e.g. a run killed mid-checkout left it locked): start afresh.
            shutil.rmtree(directory, ignore_errors=True)
            commit = _check_out_in(directory, source, ref, commit)
        info = describe(directory)
        tree = git(directory, "rev-parse", "HEAD^{tree}")
    except BaseException:
        workspace.release(directory)
        raise
    return Checkout(str(directory), repo, ref, commit, tree, info.version, info.build_time)


def _check_out_in(directory: Path, source: str, ref: str, commit: str | None) -> str:
    """Bring the clone at `directory` (made when missing) to `ref` (detached, clean); the commit."""
    if (directory / ".git").is_dir() and git(directory, "remote", "get-url", "origin") == source:
        git(directory, "fetch", "--quiet", "--force", "--prune", "--prune-tags", "--tags", "origin",
            "+refs/heads/*:refs/remotes/origin/*")  # fmt: skip
    else:
        shutil.rmtree(directory, ignore_errors=True)
        git(None, "clone", "--quiet", "--no-checkout", "--", source, str(directory))
    if commit is None:
        commit = _resolve_in_clone(directory, ref)
    else:
        try:
            git(directory, "cat-file", "-e", f"{commit}^{{commit}}")
        except CheckoutError:  # a commit on no branch of the source: fetch it by id
            git(directory, "fetch", "--quiet", "origin", commit)
    git(directory, "checkout", "--quiet", "--force", "--detach", commit)
    # Untracked files of an earlier run go; compiled modules stay (they are checked against
    # their source's timestamp, which git leaves alone on the files it did not change).
    git(directory, "clean", "-ffdxq", "-e", "__pycache__")
    return commit


@task(name=steps.CHECKOUT, retries=0)
def checkout(repo: str, ref: str) -> Checkout:
    """Step 1: the commit in a clean work directory; the version comes from `git describe`."""
    logger = get_run_logger()
    result = check_out(repo, ref, work_root())
    logger.info("checked out %s (%s) of %s into %s", result.commit, result.version, repo, result.path)
    return result


def release_checkout(path: str) -> None:
    """The run is done with its checkout (the flow's end): a kept slot is freed, anything else removed."""
    workspace.release(Path(path))
    Path(f"{path}.junit.xml").unlink(missing_ok=True)


# The pipeline's unit-test step skips the `docker` tests (engine, servers), the `slow` ones
# (process-level: they start servers or processes) and the `server` ones (a Prefect server each,
# about 10 s to start, or moto's); `make test` runs them all.
UNIT_TEST_MARKERS = "not docker and not slow and not server"


def parallel_args(cores: int | None = None) -> list[str]:
    """pytest-xdist's options when it is installed and there is more than one core, else none."""
    import importlib.util

    cores = cores if cores is not None else (os.cpu_count() or 1)
    if cores < 2 or importlib.util.find_spec("xdist") is None:
        return []
    # worksteal: a worker that runs out takes queued tests from the other (some tests wait on
    # timeouts), measured 0.4-0.9 s faster than `load` on 2 cores
    return ["-n", str(min(cores, 4)), "--dist", "worksteal"]


def pytest_command(junit_path: Path) -> list[str]:
    """The fast-test command: this interpreter's pytest, across the cores, without Docker-marked or
    slow process-level tests."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        UNIT_TEST_MARKERS,
        "-q",
        "-p",
        "no:cacheprovider",
        *parallel_args(),
        f"--junitxml={junit_path}",
    ]


def pytest_env() -> dict[str, str]:
    """The environment of the tests: ours, minus what an outer pytest or Prefect run set."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    # Compiled modules stay in the kept checkout for the next run (see `flows.source.workspace`).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # A fresh checkout has no .venv: the project's scripts (and their tests) find this
    # interpreter's venv through VENV.
    env.setdefault("VENV", sys.prefix)
    return env


def _unit_tests_cache_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    source: Checkout = parameters["source"]
    return unit_tests_key(source.tree, sys.version)


@task(name=steps.UNIT_TESTS, retries=0, cache_key_fn=_unit_tests_cache_key, persist_result=True)
def unit_tests(source: Checkout, deadline_s: float) -> TestSummary:
    """Step 2: the checkout's fast tests; failing tests stop the run (never retried)."""
    logger = get_run_logger()
    # Beside the checkout, not in it: the checkout is the image's build context.
    junit_path = Path(f"{source.path}.junit.xml")
    command = pytest_command(junit_path)
    logger.info("running %s in %s", " ".join(command[1:]), source.path)
    overdue = UnitTestsFailed(
        f"the unit tests ran over their {deadline_s:.0f}s deadline (deadlines.unit_tests); "
        "look for a hanging test or one that needs the `docker` marker"
    )
    done = run_within(command, deadline_s, overdue, cwd=source.path, env=pytest_env())
    tail = "\n".join(done.stdout.strip().splitlines()[-30:])
    logger.info("pytest exit code %s:\n%s", done.returncode, tail)
    try:
        summary = parse_junit(junit_path.read_text())
    except (OSError, JunitError) as exc:
        raise UnitTestsFailed(
            f"pytest wrote no readable report (exit code {done.returncode}): {exc}; output:\n{tail}\n"
            f"{done.stderr.strip()[-2000:]}"
        ) from exc
    publish_unit_tests(summary, source.version)
    if done.returncode not in (0, 5) or not summary.ok:  # 5: no tests collected
        names = ", ".join(f.test for f in summary.failures[:5]) or "see the log"
        raise UnitTestsFailed(
            f"unit tests failed for {source.version}: {summary.line()}; failing: {names}. "
            "Nothing was built or deployed; fix the tests and push again"
        )
    logger.info("unit tests passed: %s", summary.line())
    return summary
