"""Throwaway git repositories for the checkout tests."""

from __future__ import annotations

from pathlib import Path

from tests.support import git


def commit_files(repo: Path, files: dict[str, str], message: str) -> None:
    """Write `files` (relative path: text) into `repo` and commit them."""
    for relative, text in files.items():
        (repo / relative).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)


def new_repo(path: Path, files: dict[str, str]) -> Path:
    """A repository at `path` on branch main with one commit of `files`."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit_files(path, files, "one")
    return path
