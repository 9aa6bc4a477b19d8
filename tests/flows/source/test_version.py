"""Version strings from git: Docker-tag safety and `describe` on a real temporary repository."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.source.version import VersionError, VersionInfo, describe, tag_safe, utc_timestamp
from tests.support import git


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v1.2.0", "v1.2.0"),
        ("v1.2.0-3-gabc1234-dirty", "v1.2.0-3-gabc1234-dirty"),
        ("feature/login+fix", "feature-login-fix"),
        ("-.weird", "weird"),
        ("1.0.0+build.5", "1.0.0-build.5"),
    ],
)
def test_tag_safe(text: str, expected: str) -> None:
    assert tag_safe(text) == expected


def test_tag_safe_truncates_to_128_and_rejects_empty() -> None:
    assert len(tag_safe("a" * 300)) == 128
    with pytest.raises(ValueError, match="Docker tag"):
        tag_safe("///")


def test_utc_timestamp_format() -> None:
    moment = datetime(2026, 11, 27, 23, 5, 7, 123456, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-11-27T23:05:07Z"


def test_build_args_name_the_dockerfile_args() -> None:
    info = VersionInfo("v1", "abc", "2026-01-01T00:00:00Z")
    assert info.build_args() == {"VERSION": "v1", "REVISION": "abc", "BUILD_TIME": "2026-01-01T00:00:00Z"}


def test_describe_tagged_then_dirty(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    untagged = describe(tmp_path)
    assert untagged.version == head[: len(untagged.version)]  # --always: the abbreviated hash
    git(tmp_path, "tag", "v1.0.0")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert describe(tmp_path, now) == VersionInfo("v1.0.0", head, "2026-01-02T03:04:05Z")
    (tmp_path / "a.txt").write_text("two\n")
    assert describe(tmp_path).version == "v1.0.0-dirty"


def test_describe_outside_git_says_so(tmp_path: Path) -> None:
    with pytest.raises(VersionError, match="git checkout"):
        describe(tmp_path)
