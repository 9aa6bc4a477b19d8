"""Measure the image build: cold (no layer cache) vs warm code-only change, and the image size.

Run with the project's venv: `.venv/bin/python scripts/measure-image-build.py`. Works on a copy
of the build context in a temporary directory, so the tree is not touched; the baseline (the
cold build) is measured in the same run. Removes the images it tagged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import docker

from flows.image.build import build_image
from flows.image.wheelhouse import ensure_wheelhouse
from flows.source.version import VersionInfo, utc_timestamp

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    """Print cold, no-change and code-only build times and the image size."""
    client = docker.from_env()
    repository = f"deliverypipeline-measure-{os.getpid()}"
    tags: list[str] = []
    with tempfile.TemporaryDirectory(prefix="deliverypipeline-measure-") as tmp:
        context = Path(tmp)
        for name in ("Dockerfile", ".dockerignore", "pyproject.toml"):
            shutil.copy2(REPO / name, context / name)
        shutil.copytree(REPO / "webapp", context / "webapp", ignore=shutil.ignore_patterns("__pycache__"))
        started = time.monotonic()
        ensure_wheelhouse(context)
        wheelhouse_s = time.monotonic() - started

        def build(version: str, nocache: bool = False) -> float:
            info = VersionInfo(version, "0" * 40, utc_timestamp())
            started = time.monotonic()
            if nocache:
                stream = client.api.build(
                    path=str(context),
                    tag=f"{repository}:{version}",
                    buildargs=info.build_args(),
                    nocache=True,
                    pull=False,
                    rm=True,
                    forcerm=True,
                    decode=True,
                )
                for chunk in stream:
                    if "error" in chunk:
                        raise RuntimeError(chunk["error"])
            else:
                build_image(client, context, repository, info, log=lambda _line: None)
            tags.append(f"{repository}:{version}")
            return time.monotonic() - started

        try:
            cold = build("cold", nocache=True)
            same = build("same-code")
            with (context / "webapp" / "__init__.py").open("a") as handle:
                handle.write("\n# a code-only change\n")
            code_only = build("code-change")
            size_mb = client.images.get(tags[-1]).attrs["Size"] / 1e6
            base_mb = client.images.get("deliverypipeline/base:bookworm-py311").attrs["Size"] / 1e6
        finally:
            for tag in tags:
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(tag, noprune=True)
    print(f"wheelhouse (cached key, link into context): {wheelhouse_s:6.2f} s")
    print(f"cold build (no layer cache, baseline):      {cold:6.2f} s")
    print(f"warm build, new version only:               {same:6.2f} s  ({same / cold:.2f}x)")
    print(f"warm build, code-only change:               {code_only:6.2f} s  ({code_only / cold:.2f}x)")
    print(f"image size: {size_mb:.0f} MB (base image {base_mb:.0f} MB, added {size_mb - base_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
