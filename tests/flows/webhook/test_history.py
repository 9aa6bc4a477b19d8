"""`GitHistory`: ancestry and versions read from a real repository, in place or through a kept mirror."""

from __future__ import annotations

from pathlib import Path

from flows.webhook.history import GitHistory, for_repository
from tests.support import git


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def repository(tmp_path: Path) -> tuple[Path, list[str], str]:
    """a - b - c on main, tag v1.0 on a, and d beside c on b."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    a = commit(repo, "a")
    git(repo, "tag", "v1.0")
    b, c = commit(repo, "b"), commit(repo, "c")
    git(repo, "checkout", "-q", "-b", "side", b)
    d = commit(repo, "d")
    git(repo, "checkout", "-q", "main")
    return repo, [a, b, c], d


def test_ancestry_and_versions_of_a_repository_on_this_machine(tmp_path: Path) -> None:
    repo, (a, b, c), d = repository(tmp_path)
    history = for_repository(str(repo))
    assert history.is_ancestor(a, b) is True
    assert history.is_ancestor(a, c) is True
    assert history.is_ancestor(c, a) is False
    assert history.is_ancestor(c, c) is False  # strict
    assert history.is_ancestor(c, d) is False  # beside it
    assert history.is_ancestor(a, "f" * 40) is None  # a commit it does not have
    assert history.commit_of("v1.0") == a
    assert history.commit_of(f"v1.0-2-g{c[:7]}") == c  # as `git describe` names it
    assert history.commit_of(f"v1.0-2-g{c[:7]}-dirty") == c
    assert history.commit_of("nothing-like-it") is None
    assert history.commit_of("--all") is None


def test_a_remote_repository_is_read_through_a_commits_only_mirror_fetched_each_time(tmp_path: Path) -> None:
    repo, (a, _, c), _ = repository(tmp_path)
    url = f"file://{repo}"
    first = for_repository(url, tmp_path / "work")
    assert first.directory is not None and first.directory.is_relative_to(tmp_path / "work" / "history")
    assert first.is_ancestor(a, c) is True
    e = commit(repo, "e")
    again = for_repository(url, tmp_path / "work")  # the same mirror, fetched
    assert again.directory == first.directory
    assert again.is_ancestor(c, e) is True


def test_an_unreachable_repository_knows_nothing(tmp_path: Path) -> None:
    history = for_repository(f"file://{tmp_path}/missing", tmp_path / "work")
    assert history.is_ancestor("a" * 40, "b" * 40) is None
    assert history.commit_of("v1.0") is None
    assert GitHistory(None).commit_of("HEAD") is None
