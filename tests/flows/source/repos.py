"""Throwaway git repositories for the checkout tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """Run git in `repo`; its output."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


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
    git(path, "config", "user.email", "ci@example.invalid")
    git(path, "config", "user.name", "ci")
    commit_files(path, files, "one")
    return path
