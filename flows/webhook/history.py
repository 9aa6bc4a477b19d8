"""A pushed repository's commit graph, as the flow reads it to decide superseding (git I/O only).

A repository on this machine (a path) is read in place; for a remote one (a URL) a commits-only
mirror (`git clone --bare --filter=tree:0`: no trees, no files) is kept under the work root and
fetched before each decision, so the question costs a fetch of the new commits, not a checkout.
Every answer git cannot give (a commit it does not have, a remote it cannot reach) is None:
superseding then decides on the pushes' own fields alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flows.errors import SourceError
from flows.source.tasks import git, work_root
from flows.source.workspace import slot_key

HISTORY_DIR = "history"
DIRTY = "-dirty"

_log = logging.getLogger(__name__)


class GitHistory:
    """The commit graph of the git repository at `directory` (answers are kept: commits never change)."""

    def __init__(self, directory: Path | None) -> None:
        """`directory` None: no repository could be had, every answer is None."""
        self.directory = directory
        self._ancestry: dict[tuple[str, str], bool | None] = {}
        self._commits: dict[str, str | None] = {}

    def _git(self, *args: str) -> str | None:
        if self.directory is None:
            return None
        try:
            return git(self.directory, *args)
        except SourceError:
            return None

    def is_ancestor(self, older: str, newer: str) -> bool | None:
        """Whether commit `older` is a strict ancestor of commit `newer`; None when git cannot tell."""
        if older == newer:
            return False
        if (older, newer) not in self._ancestry:
            first, second = self.commit_of(older), self.commit_of(newer)
            base = None if first is None or second is None else self._git("merge-base", first, second)
            self._ancestry[older, newer] = None if base is None else base == first
        return self._ancestry[older, newer]

    def commit_of(self, name: str) -> str | None:
        """The full commit a commit id, tag or `git describe` version (`v1.2-3-gabc1234`) names."""
        if name not in self._commits:
            self._commits[name] = self._resolve(name)
        return self._commits[name]

    def _resolve(self, name: str) -> str | None:
        if not name or name.startswith("-"):
            return None
        for candidate in dict.fromkeys((name, name.removesuffix(DIRTY))):
            commit = self._git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
            if commit:
                return commit
        return None


def for_repository(repo: str, root: Path | None = None) -> GitHistory:
    """The history of `repo`: in place for a path, else a commits-only mirror under `root`, fetched now."""
    if Path(repo).is_dir():
        return GitHistory(Path(repo).resolve())
    if repo.startswith("-"):
        return GitHistory(None)
    mirror = (root or work_root()) / HISTORY_DIR / f"{slot_key(repo)}.git"
    try:
        if (mirror / "HEAD").is_file():
            git(mirror, "fetch", "--quiet", "--force", "--prune", "--tags", "origin",
                "+refs/heads/*:refs/heads/*")  # fmt: skip
        else:
            mirror.parent.mkdir(parents=True, exist_ok=True)
            git(None, "clone", "--quiet", "--bare", "--filter=tree:0", "--", repo, str(mirror))
    except SourceError as exc:
        _log.warning("no history of %s for superseding (%s); the pushes' own fields decide", repo, exc)
        return GitHistory(mirror if (mirror / "HEAD").is_file() else None)
    return GitHistory(mirror)
