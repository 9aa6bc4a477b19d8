"""The checkout step's git work on a throwaway local repository (no Docker, no Prefect run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.source.tasks import CheckoutError, check_out, parallel_args, pytest_command, resolve_local
from tests.flows.source.repos import commit_files, new_repo
from tests.support import git


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository for the module: its tests only read it (each checks out under its own tmp_path)."""
    path = new_repo(tmp_path_factory.mktemp("source") / "repo", {"a.txt": "one\n"})
    git(path, "tag", "v1.0.0")
    commit_files(path, {"a.txt": "two\n"}, "two")
    return path


def test_checks_out_a_commit_into_a_fresh_directory(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "v1.0.0")
    result = check_out(str(repo), "v1.0.0", tmp_path / "work")
    assert result.commit == first
    assert (Path(result.path) / "a.txt").read_text() == "one\n"
    assert result.version == "v1.0.0"


def test_head_resolves_to_the_latest_commit(repo: Path, tmp_path: Path) -> None:
    result = check_out(str(repo), "HEAD", tmp_path / "work")
    assert result.commit == git(repo, "rev-parse", "HEAD")
    assert result.version.startswith("v1.0.0-1-g")
    assert resolve_local(str(repo), "main") == result.commit


def test_an_unknown_ref_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckoutError):
        check_out(str(repo), "no-such-branch", tmp_path / "work")


@pytest.mark.parametrize(("repository", "ref"), [("--upload-pack=touch /tmp/x", "HEAD"), (".", "--output=x")])
def test_values_git_would_read_as_options_are_refused(
    repo: Path, tmp_path: Path, repository: str, ref: str
) -> None:
    source = str(repo) if repository == "." else repository
    with pytest.raises(CheckoutError, match="is not a path, URL or git ref"):
        check_out(source, ref, tmp_path / "work")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_the_unit_tests_run_across_the_cores_up_to_four_with_work_stealing() -> None:
    assert parallel_args(1) == []
    assert parallel_args(2) == ["-n", "2", "--dist", "worksteal"]
    assert parallel_args(16) == ["-n", "4", "--dist", "worksteal"]


def test_the_unit_test_step_leaves_out_tests_that_need_docker_processes_or_a_prefect_server() -> None:
    command = pytest_command(Path("/tmp/report.xml"))
    assert command[1:5] == ["-m", "pytest", "-m", "not docker and not slow and not server"]
    assert command[-1] == "--junitxml=/tmp/report.xml"
