"""The wheelhouse: dependency list, cache key, pip command, and cache/context reuse (pip faked)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from flows.image.errors import WheelhouseError
from flows.image.wheelhouse import (
    KEY_FILE,
    REQUIREMENTS_FILE,
    WheelTarget,
    download_command,
    ensure_wheelhouse,
    runtime_requirements,
    wheelhouse_key,
)

TARGET = WheelTarget(arch="x86_64")
PYPROJECT = """
[project]
name = "demo"
dependencies = ["starlette>=0.40", "plyvel>=1.5"]
[project.optional-dependencies]
dev = ["pytest"]
"""


class FakePip:
    """Stands in for `pip download`: writes one wheel per requirement into --dest."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, cmd: Sequence[str]) -> None:
        self.calls.append(list(cmd))
        if self.fail:
            raise WheelhouseError("pip download failed (faked)")
        dest = Path(cmd[cmd.index("--dest") + 1])
        for req in cmd[cmd.index("--platform") :]:
            if not req.startswith("--") and "manylinux" not in req:
                name = req.split(">")[0].split("=")[0]
                (dest / f"{name}-1.0-py3-none-any.whl").write_bytes(b"wheel")


def _project(tmp_path: Path, text: str = PYPROJECT) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text(text)
    return project


def test_runtime_requirements_are_the_project_dependencies(tmp_path: Path) -> None:
    assert runtime_requirements(_project(tmp_path) / "pyproject.toml") == ["starlette>=0.40", "plyvel>=1.5"]


def test_runtime_requirements_missing_list_is_an_error(tmp_path: Path) -> None:
    project = _project(tmp_path, '[project]\nname = "x"\n')
    with pytest.raises(WheelhouseError, match=r"\[project\].dependencies"):
        runtime_requirements(project / "pyproject.toml")


def test_key_ignores_order_but_not_content_or_target() -> None:
    key = wheelhouse_key(["a>=1", "b"], TARGET)
    assert key == wheelhouse_key(["b", "a>=1"], TARGET)
    assert key != wheelhouse_key(["a>=2", "b"], TARGET)
    assert key != wheelhouse_key(["a>=1", "b"], WheelTarget(arch="aarch64"))


def test_platform_tags_cover_manylinux_up_to_the_base_glibc() -> None:
    tags = TARGET.platform_tags()
    assert "manylinux_2_36_x86_64" in tags
    assert "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def test_download_command_takes_binary_wheels_for_the_image_python(tmp_path: Path) -> None:
    cmd = download_command(["plyvel>=1.5"], tmp_path, TARGET, python="py")
    assert cmd[:4] == ["py", "-m", "pip", "download"]
    assert "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.11"
    assert cmd[cmd.index("--abi") + 1] == "cp311"
    assert cmd[cmd.index("--dest") + 1] == str(tmp_path)
    assert cmd[-1] == "plyvel>=1.5"


def test_ensure_wheelhouse_downloads_once_then_reuses(tmp_path: Path) -> None:
    project, cache, pip = _project(tmp_path), tmp_path / "cache", FakePip()
    wheelhouse = ensure_wheelhouse(project, cache, target=TARGET, run=pip)
    assert wheelhouse == project / ".wheelhouse"
    assert sorted(p.name for p in wheelhouse.glob("*.whl")) == [
        "plyvel-1.0-py3-none-any.whl",
        "starlette-1.0-py3-none-any.whl",
    ]
    assert (wheelhouse / REQUIREMENTS_FILE).read_text() == "starlette>=0.40\nplyvel>=1.5\n"
    ensure_wheelhouse(project, cache, target=TARGET, run=pip)
    assert len(pip.calls) == 1

    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text(PYPROJECT)
    ensure_wheelhouse(other, cache, target=TARGET, run=pip)
    assert len(pip.calls) == 1  # a second checkout of the same deps is served from the cache
    assert (other / ".wheelhouse" / KEY_FILE).read_text() == (wheelhouse / KEY_FILE).read_text()


def test_changed_dependencies_replace_the_wheelhouse(tmp_path: Path) -> None:
    project, cache, pip = _project(tmp_path), tmp_path / "cache", FakePip()
    ensure_wheelhouse(project, cache, target=TARGET, run=pip)
    (project / "pyproject.toml").write_text(PYPROJECT.replace('"plyvel>=1.5"', '"uvicorn>=0.30"'))
    wheelhouse = ensure_wheelhouse(project, cache, target=TARGET, run=pip)
    assert len(pip.calls) == 2
    assert sorted(p.name for p in wheelhouse.glob("*.whl")) == [
        "starlette-1.0-py3-none-any.whl",
        "uvicorn-1.0-py3-none-any.whl",
    ]
    assert [p.name for p in project.iterdir() if p.name.startswith(".wheelhouse")] == [".wheelhouse"]


def test_failed_download_leaves_no_cache_entry(tmp_path: Path) -> None:
    project, cache = _project(tmp_path), tmp_path / "cache"
    with pytest.raises(WheelhouseError, match="faked"):
        ensure_wheelhouse(project, cache, target=TARGET, run=FakePip(fail=True))
    assert list(cache.iterdir()) == []
    assert not (project / ".wheelhouse").exists()
