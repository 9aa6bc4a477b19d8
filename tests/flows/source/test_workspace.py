"""Kept work directories: slots per repository held by flock, freed at the end, reused in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.source import workspace
from flows.source.tasks import check_out, release_checkout
from tests.flows.source.repos import commit_files, new_repo
from tests.support import git


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's starting repository, made once; tests get copies of it."""
    return new_repo(
        tmp_path_factory.mktemp("source") / "repo", {"kept.py": "KEPT = 1\n", "changed.py": "CHANGED = 1\n"}
    )


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A test's own copy of the template (the tests commit to it): cheaper than a new repository."""
    return Path(shutil.copytree(template, tmp_path / "repo", symlinks=True))


def is_slot(directory: Path, root: Path) -> bool:
    """Whether `directory` is one of the kept slots under `root` (not a run's own directory)."""
    return directory.parent == root / workspace.SLOT_DIR


def test_concurrent_takes_get_different_slots_and_a_released_slot_is_taken_again(tmp_path: Path) -> None:
    first = workspace.take(tmp_path, "/repo", "a", slots=2)
    second = workspace.take(tmp_path, "/repo", "b", slots=2)
    try:
        assert first != second
        assert is_slot(first, tmp_path) and is_slot(second, tmp_path)
        assert first.parent == second.parent == tmp_path / workspace.SLOT_DIR
    finally:
        workspace.release(second)
    again = workspace.take(tmp_path, "/repo", "c", slots=2)
    try:
        assert again == second
    finally:
        workspace.release(again)
        workspace.release(first)


def test_every_slot_busy_gives_a_fresh_directory_that_release_removes(tmp_path: Path) -> None:
    held = workspace.take(tmp_path, "/repo", "a", slots=1)
    try:
        fresh = workspace.take(tmp_path, "/repo", "abc1234", slots=1)
        assert not is_slot(fresh, tmp_path)
        assert fresh.parent == tmp_path and fresh.name.startswith("abc1234-")
        fresh.mkdir()
        workspace.release(fresh)
        assert not fresh.exists()
    finally:
        workspace.release(held)
    assert held.parent.exists()  # a slot's directory is kept (it holds the next run's head start)


def test_another_repository_gets_slots_of_its_own(tmp_path: Path) -> None:
    one = workspace.take(tmp_path, "/repo-one", "a", slots=1)
    two = workspace.take(tmp_path, "/repo-two", "a", slots=1)
    try:
        assert is_slot(one, tmp_path) and is_slot(two, tmp_path) and one != two
    finally:
        workspace.release(one)
        workspace.release(two)


@pytest.mark.slow  # a holder process
def test_a_slot_held_by_another_process_is_skipped_until_that_process_dies(tmp_path: Path) -> None:
    mine = workspace.take(tmp_path, "/repo", "a", slots=1)
    lock = f"{mine}.lock"
    workspace.release(mine)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl,sys,time; f=open({lock!r},'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert not is_slot(workspace.take(tmp_path, "/repo", "a", slots=1), tmp_path)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    taken = workspace.take(tmp_path, "/repo", "a", slots=1)  # the kernel freed the dead holder's lock
    try:
        assert taken == mine
    finally:
        workspace.release(taken)


def test_a_kept_checkout_is_updated_in_place_and_keeps_what_did_not_change(
    repo: Path, tmp_path: Path
) -> None:
    root = tmp_path / "work"
    first = check_out(str(repo), "HEAD", root)
    kept, changed = Path(first.path) / "kept.py", Path(first.path) / "changed.py"
    compiled = Path(first.path) / "__pycache__" / "kept.cpython-311.pyc"
    compiled.parent.mkdir()
    compiled.write_bytes(b"compiled")
    (Path(first.path) / "build-output.txt").write_text("left by the last run")
    kept_mtime = kept.stat().st_mtime_ns
    release_checkout(first.path)

    commit_files(repo, {"changed.py": "CHANGED = 2\n", "added.py": "ADDED = 1\n"}, "two")
    git(repo, "tag", "v2")
    second = check_out(str(repo), "HEAD", root)
    try:
        assert second.path == first.path
        assert second.commit == git(repo, "rev-parse", "HEAD") and second.version == "v2"
        assert changed.read_text() == "CHANGED = 2\n" and (Path(second.path) / "added.py").exists()
        assert kept.stat().st_mtime_ns == kept_mtime  # untouched: its compiled module stays valid
        assert compiled.read_bytes() == b"compiled"
        assert not (Path(second.path) / "build-output.txt").exists()
        assert git(Path(second.path), "status", "--porcelain", "--untracked-files=no") == ""
    finally:
        release_checkout(second.path)


def test_a_slot_holding_another_repositorys_clone_is_cloned_again(repo: Path, tmp_path: Path) -> None:
    root = tmp_path / "work"
    slot = workspace.take(root, str(repo.resolve()), "x", slots=1)
    workspace.release(slot)
    git(tmp_path, "init", "-q", str(slot))  # a clone of nothing: not this repository's
    result = check_out(str(repo), "HEAD", root)
    try:
        assert result.path == str(slot)
        assert git(slot, "remote", "get-url", "origin") == str(repo.resolve())
        assert (slot / "kept.py").read_text() == "KEPT = 1\n"
    finally:
        release_checkout(result.path)


def test_a_kept_clone_of_a_url_releases_the_branchs_newest_commit(repo: Path, tmp_path: Path) -> None:
    url = repo.resolve().as_uri()  # not a local path: the ref is resolved in the clone
    first = check_out(url, "main", tmp_path / "work")
    release_checkout(first.path)
    commit_files(repo, {"changed.py": "CHANGED = 2\n"}, "two")
    second = check_out(url, "main", tmp_path / "work")
    try:
        assert second.path == first.path
        assert second.commit == git(repo, "rev-parse", "main") != first.commit
    finally:
        release_checkout(second.path)
    head = check_out(url, "HEAD", tmp_path / "work")  # the remote's HEAD, not the clone's last one
    try:
        assert head.commit == second.commit
    finally:
        release_checkout(head.path)


def test_a_kept_clone_git_cannot_use_is_cloned_afresh(repo: Path, tmp_path: Path) -> None:
    first = check_out(str(repo), "HEAD", tmp_path / "work")
    release_checkout(first.path)
    (Path(first.path) / ".git" / "index.lock").write_text("")  # a git killed mid-checkout
    commit_files(repo, {"changed.py": "CHANGED = 2\n"}, "two")
    second = check_out(str(repo), "HEAD", tmp_path / "work")
    try:
        assert second.path == first.path and second.commit == git(repo, "rev-parse", "HEAD")
        assert (Path(second.path) / "changed.py").read_text() == "CHANGED = 2\n"
    finally:
        release_checkout(second.path)
