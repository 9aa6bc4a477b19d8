"""Build information baked into the image: ``webapp/buildinfo.json`` = {version, revision, build_time}.

``version`` is ``git describe --tags --always --dirty``, ``revision`` the full commit sha and
``build_time`` ISO-8601 UTC. Running from a checkout without the file gives version ``0.0.0+dev``.

CLI (used by the build)::

    python -m webapp.buildinfo --write PATH [--repo DIR]
    python -m webapp.buildinfo --write PATH --version V --revision SHA [--build-time T]   # no git needed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from webapp.errors import BuildInfoError

DEFAULT_PATH = Path(__file__).with_name("buildinfo.json")
DEV_VERSION = "0.0.0+dev"
KEYS = ("version", "revision", "build_time")


@dataclass(frozen=True)
class BuildInfo:
    """Version, revision and build time of the running code."""

    version: str
    revision: str
    build_time: str


DEV = BuildInfo(version=DEV_VERSION, revision="unknown", build_time="unknown")


def load(path: Path = DEFAULT_PATH) -> BuildInfo:
    """Read the build info; a missing file means a development checkout (version 0.0.0+dev)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DEV
    except OSError as exc:
        raise BuildInfoError(f"{path}: cannot read the build info ({exc})") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BuildInfoError(f"{path}: not valid JSON ({exc}); rebuild the image") from exc
    if not isinstance(doc, dict):
        raise BuildInfoError(f"{path}: expected a JSON object with keys {', '.join(KEYS)}")
    for key in KEYS:
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BuildInfoError(f"{path}: key {key!r} must be a non-empty string (got {doc.get(key)!r})")
    return BuildInfo(version=doc["version"], revision=doc["revision"], build_time=doc["build_time"])


def utc_now_iso() -> str:
    """The current time as ISO-8601 UTC with a Z suffix, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(repo: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildInfoError(f"cannot run git in {repo} ({exc})") from exc
    if result.returncode != 0:
        raise BuildInfoError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout.strip()


def from_git(repo: Path, build_time: str | None = None) -> BuildInfo:
    """Describe the checkout at ``repo``: tags-based version (``-dirty`` if modified) and full sha."""
    return BuildInfo(
        version=_git(repo, "describe", "--tags", "--always", "--dirty"),
        revision=_git(repo, "rev-parse", "HEAD"),
        build_time=build_time or utc_now_iso(),
    )


def write(info: BuildInfo, path: Path) -> None:
    """Write ``info`` to ``path`` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".buildinfo-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(info), handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """CLI: write buildinfo.json from git (or from explicit values) and print it."""
    parser = argparse.ArgumentParser(prog="python -m webapp.buildinfo", description=__doc__.splitlines()[0])
    parser.add_argument("--write", required=True, type=Path, metavar="PATH", help="file to write")
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="git checkout to describe (default: cwd)"
    )
    parser.add_argument("--version", dest="version_", help="use this version instead of git describe")
    parser.add_argument("--revision", help="use this revision instead of git rev-parse HEAD")
    parser.add_argument("--build-time", help="use this ISO-8601 UTC time instead of now")
    args = parser.parse_args(argv)
    try:
        if args.version_ and args.revision:
            info = BuildInfo(args.version_, args.revision, args.build_time or utc_now_iso())
        else:
            info = from_git(args.repo, args.build_time)
            if args.version_ or args.revision:
                info = BuildInfo(
                    args.version_ or info.version, args.revision or info.revision, info.build_time
                )
        write(info, args.write)
    except (BuildInfoError, OSError) as exc:
        print(f"webapp.buildinfo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(info)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
