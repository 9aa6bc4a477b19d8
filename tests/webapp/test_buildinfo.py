"""Build info: reading buildinfo.json, the dev fallback, and writing it from git."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import git
from webapp import buildinfo
from webapp.buildinfo import DEV_VERSION, BuildInfo
from webapp.errors import BuildInfoError


def test_missing_file_means_a_dev_checkout(tmp_path: Path) -> None:
    info = buildinfo.load(tmp_path / "buildinfo.json")
    assert info.version == DEV_VERSION == "0.0.0+dev"


def test_written_file_is_read_back(tmp_path: Path) -> None:
    info = BuildInfo(version="v1.2.0-3-gabc", revision="a" * 40, build_time="2026-11-27T10:00:00Z")
    buildinfo.write(info, tmp_path / "b.json")
    assert buildinfo.load(tmp_path / "b.json") == info


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": "v1", "revision": "r"}', "key 'build_time' must be a non-empty string"),
        ('{"version": "", "revision": "r", "build_time": "t"}', "key 'version'"),
    ],
)
def test_malformed_file_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "buildinfo.json"
    path.write_text(text)
    with pytest.raises(BuildInfoError, match=message) as err:
        buildinfo.load(path)
    assert str(path) in str(err.value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "f").write_text("1")
    git(path, "add", "f")
    git(path, "commit", "-qm", "one")
    git(path, "tag", "v1.0.0")
    return path


def test_from_git_uses_describe_and_full_sha(repo: Path) -> None:
    info = buildinfo.from_git(repo, build_time="2026-11-27T10:00:00Z")
    assert info == BuildInfo("v1.0.0", git(repo, "rev-parse", "HEAD"), "2026-11-27T10:00:00Z")
    (repo / "f").write_text("2")
    assert buildinfo.from_git(repo).version == "v1.0.0-dirty"


def test_cli_writes_the_file_from_git(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "buildinfo.json"
    assert buildinfo.main(["--write", str(out), "--repo", str(repo)]) == 0
    doc = json.loads(out.read_text())
    assert doc["version"] == "v1.0.0"
    assert doc["revision"] == git(repo, "rev-parse", "HEAD")
    assert doc["build_time"].endswith("Z")


def test_cli_takes_explicit_values_without_git(tmp_path: Path) -> None:
    out = tmp_path / "buildinfo.json"
    args = ["--write", str(out), "--repo", str(tmp_path), "--version", "v9", "--revision", "b" * 40]
    assert buildinfo.main([*args, "--build-time", "2026-01-01T00:00:00Z"]) == 0
    assert buildinfo.load(out) == BuildInfo("v9", "b" * 40, "2026-01-01T00:00:00Z")


def test_cli_outside_a_checkout_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert buildinfo.main(["--write", str(tmp_path / "b.json"), "--repo", str(tmp_path)]) == 1
    assert "webapp.buildinfo: git describe" in capsys.readouterr().err
