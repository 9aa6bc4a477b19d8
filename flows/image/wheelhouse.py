"""The wheelhouse: wheels of the webapp's runtime dependencies, built on the host.

Inside the image pip reaches no index, so the Dockerfile installs with
`pip install --no-index --find-links` from `<project>/.wheelhouse`. The wheels are
downloaded once per dependency list into a shared cache
(`~/.cache/deliverypipeline/wheelhouse/<key>`), keyed by a hash of the list and the
image's Python and platform, and hard-linked into the build context: a warm re-run
costs a hash and a few links.

Only binary wheels are taken (`--only-binary=:all:`) for CPython 3.11 on manylinux with
the base image's glibc, so what the host has installed never leaks into the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.command import run_within
from flows.image.errors import WheelhouseError

WHEELHOUSE_DIR = ".wheelhouse"
REQUIREMENTS_FILE = "requirements.txt"
KEY_FILE = "KEY"
_KEY_FORMAT = 1  # bump when the layout or the download command changes meaning


@dataclass(frozen=True)
class WheelTarget:
    """The interpreter and platform of the image the wheels are for (the base image's)."""

    python_version: str = "3.11"
    abi: str = "cp311"
    arch: str = platform.machine() or "x86_64"
    glibc: tuple[int, int] = (2, 36)  # Debian bookworm

    def platform_tags(self) -> list[str]:
        """Every manylinux tag a wheel may carry and still load on this glibc."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, 4, -1)]
        # The legacy aliases of manylinux_2_17, _2_12 and _2_5.
        tags += [f"manylinux2014_{self.arch}", f"manylinux2010_{self.arch}", f"manylinux1_{self.arch}"]
        return tags


Runner = Callable[[Sequence[str]], None]


def runtime_requirements(pyproject: Path) -> list[str]:
    """The webapp's runtime dependencies: `[project].dependencies` of `pyproject`."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WheelhouseError(f"cannot read the dependency list from {pyproject}: {exc}") from exc
    deps = data.get("project", {}).get("dependencies")
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps) or not deps:
        raise WheelhouseError(f"{pyproject} has no [project].dependencies list of requirement strings")
    return [str(d).strip() for d in deps]


def wheelhouse_key(requirements: Sequence[str], target: WheelTarget) -> str:
    """A short stable hash of what decides the wheelhouse's content."""
    payload = json.dumps(
        {
            "format": _KEY_FORMAT,
            "requirements": sorted(r.strip() for r in requirements),
            "python": target.python_version,
            "abi": target.abi,
            "arch": target.arch,
            "glibc": list(target.glibc),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def download_command(
    requirements: Sequence[str], dest: Path, target: WheelTarget, python: str = sys.executable
) -> list[str]:
    """The `pip download` command that fills `dest` with binary wheels for `target`."""
    cmd = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    cmd += ["--only-binary=:all:", "--dest", str(dest)]
    cmd += ["--python-version", target.python_version, "--implementation", "cp", "--abi", target.abi]
    for tag in target.platform_tags():
        cmd += ["--platform", tag]
    return [*cmd, *requirements]


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/deliverypipeline/wheelhouse`, or under `~/.cache`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deliverypipeline" / "wheelhouse"


def _pip_noise(line: str) -> bool:
    # Warnings about configured local index folders that do not hold a package.
    return "is ignored: it is neither a file nor a directory" in line


def _run_pip(cmd: Sequence[str]) -> None:
    overdue = WheelhouseError("pip download took over 600 s; is the package index reachable?")
    done = run_within(cmd, 600, overdue)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if not _pip_noise(line)]
        tail = "\n".join(lines[-15:])
        raise WheelhouseError(
            f"pip download failed (exit {done.returncode}); a dependency may have no binary wheel "
            f"for CPython 3.11 manylinux, or the index is unreachable:\n{tail}"
        )


def _is_complete(directory: Path, key: str) -> bool:
    key_file = directory / KEY_FILE
    return key_file.is_file() and key_file.read_text().strip() == key and any(directory.glob("*.whl"))


def _fill_cache(entry: Path, requirements: Sequence[str], key: str, target: WheelTarget, run: Runner) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = entry.parent / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        run(download_command(requirements, staging, target))
        if not any(staging.glob("*.whl")):
            raise WheelhouseError(f"pip download left no wheels in {staging}")
        (staging / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in requirements))
        (staging / KEY_FILE).write_text(key + "\n")
        try:
            staging.rename(entry)
        except OSError:
            if not _is_complete(entry, key):  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def _install_into_context(entry: Path, target_dir: Path) -> None:
    staging = target_dir.with_name(f"{target_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for item in sorted(entry.iterdir()):
        _link_or_copy(item, staging / item.name)
    old = target_dir.with_name(f"{target_dir.name}.old-{os.getpid()}")
    if target_dir.exists():
        target_dir.rename(old)
    staging.rename(target_dir)
    shutil.rmtree(old, ignore_errors=True)


def ensure_wheelhouse(
    project_dir: Path,
    cache_dir: Path | None = None,
    *,
    target: WheelTarget | None = None,
    run: Runner = _run_pip,
    log: Callable[[str], None] = lambda _line: None,
) -> Path:
    """Make `<project_dir>/.wheelhouse` hold the wheels of the project's runtime dependencies.

    Returns the wheelhouse path. Cheap when already current (its KEY file matches);
    downloads only when the shared cache has no entry for this dependency list.
    """
    target = target or WheelTarget()
    requirements = runtime_requirements(project_dir / "pyproject.toml")
    key = wheelhouse_key(requirements, target)
    wheelhouse = project_dir / WHEELHOUSE_DIR
    if _is_complete(wheelhouse, key):
        log(f"wheelhouse {wheelhouse} is current ({key})")
        return wheelhouse
    entry = (cache_dir or default_cache_dir()) / key
    if _is_complete(entry, key):
        log(f"wheelhouse: reusing cached wheels {entry}")
    else:
        log(f"wheelhouse: downloading wheels for {', '.join(requirements)} into {entry}")
        _fill_cache(entry, requirements, key, target, run)
    _install_into_context(entry, wheelhouse)
    return wheelhouse
