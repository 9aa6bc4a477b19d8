"""The release's version, revision and build time, read from git like the seed's sbt-git.

`git describe --tags --always --dirty --abbrev=8` gives the human version
("v1.4.0-3-gabc12345-dirty"), made safe for a Docker tag, with the commit shortened as run names
shorten it (`flows.keys.SHORT`); `git rev-parse HEAD` gives the full revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flows.command import run_within
from flows.errors import SourceError
from flows.keys import SHORT

_TAG_MAX = 128
_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


class VersionError(SourceError):
    """The version could not be read from git (not a repository, git missing)."""


@dataclass(frozen=True)
class VersionInfo:
    """What is baked into the image: `buildinfo.json` and the OCI labels."""

    version: str
    revision: str
    build_time: str  # ISO 8601, UTC, second precision, e.g. "2026-11-27T23:05:00Z"

    def build_args(self) -> dict[str, str]:
        """The Dockerfile's build arguments for this version."""
        return {"VERSION": self.version, "REVISION": self.revision, "BUILD_TIME": self.build_time}


def tag_safe(text: str) -> str:
    """`text` as a valid Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.

    Runs of other characters become "-" ("feature/x" -> "feature-x"); a leading "." or "-"
    is dropped. Raises ValueError when nothing usable is left.
    """
    cleaned = _TAG_BAD.sub("-", text.strip()).lstrip(".-")[:_TAG_MAX]
    if not cleaned:
        raise ValueError(f"cannot make a Docker tag out of {text!r}")
    return cleaned


def utc_timestamp(moment: datetime | None = None) -> str:
    """`moment` (default: now) as an ISO 8601 UTC string with a trailing Z."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(repo_dir: Path, *args: str) -> str:
    overdue = VersionError(f"`git {' '.join(args)}` in {repo_dir} took over 30 s")
    try:
        done = run_within(["git", "-C", str(repo_dir), *args], 30, overdue)
    except FileNotFoundError as exc:
        raise VersionError("git is not installed; install it (scripts/setup-host.sh does)") from exc
    if done.returncode != 0:
        raise VersionError(
            f"`git {' '.join(args)}` failed in {repo_dir} (is it a git checkout with a commit?): "
            f"{done.stderr.strip()}"
        )
    return done.stdout.strip()


def describe(repo_dir: Path, now: datetime | None = None) -> VersionInfo:
    """Version, revision and build time of the checkout at `repo_dir`."""
    described = _git(repo_dir, "describe", "--tags", "--always", "--dirty", f"--abbrev={SHORT}")
    revision = _git(repo_dir, "rev-parse", "HEAD")
    return VersionInfo(version=tag_safe(described), revision=revision, build_time=utc_timestamp(now))
