"""`python -m flows.image`: build the release image by hand, optionally smoke-test, push or run it.

`build_release` chains the build operations the pipeline runs as separate tasks (wheelhouse,
version, image); `make demo` uses `--run` to serve the image on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from flows import http
from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.image.build import DEFAULT_BASE_IMAGE, BuiltImage, build_image
from flows.image.errors import BuildStepError
from flows.image.push import push_image
from flows.image.smoke import smoke_test
from flows.image.wheelhouse import ensure_wheelhouse
from flows.source.version import VersionInfo, describe

DEMO_CONTAINER = "deliverypipeline-demo"


def build_release(
    client: Any,
    project_dir: Path,
    repository: str,
    *,
    log: Callable[[str], None] = print,
    base_image: str = DEFAULT_BASE_IMAGE,
    extra_labels: Mapping[str, str] | None = None,
) -> tuple[VersionInfo, BuiltImage]:
    """Wheelhouse, version from git, then the image `<repository>:<version>` of `project_dir`."""
    ensure_wheelhouse(project_dir, log=log)
    info = describe(project_dir)
    built = build_image(client, project_dir, repository, info, base_image, log, extra_labels=extra_labels)
    return info, built


def run_detached(
    client: Any, image: str, bind: str, name: str, deadline_s: float = 60, clock: Clock = SYSTEM_CLOCK
) -> str:
    """Replace container `name` with one of `image` published on `bind` (host:port); wait for /health."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise BuildStepError(f"--run wants HOST:PORT, e.g. 127.0.0.1:8080, got {bind!r}")
    try:
        client.containers.get(name).remove(force=True)
    except Exception as exc:
        if type(exc).__name__ != "NotFound":
            raise BuildStepError(f"cannot remove the previous container {name}: {exc}") from exc
    try:
        container = client.containers.run(
            image, name=name, detach=True, ports={"8080/tcp": (host, int(port))}
        )
    except Exception as exc:
        raise BuildStepError(f"cannot start {image} on {bind} (is the port taken?): {exc}") from exc
    url = f"http://{bind}"

    def logs() -> str:
        return bytes(container.logs(tail=30)).decode("utf-8", "replace")

    def answering(_: Deadline) -> str | None:
        if http.get(f"{url}/health", timeout=2).status == 200:
            return url
        container.reload()
        if container.status == "exited":
            raise BuildStepError(f"{image} exited before answering {url}/health:\n{logs()}")
        return None

    def not_answering(_: Deadline) -> BuildStepError:
        return BuildStepError(f"{image} did not answer {url}/health within {deadline_s:.0f}s:\n{logs()}")

    return poll_until(answering, deadline_s, 0.25, not_answering, clock=clock)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the image of a checkout; with flags, smoke-test, push and/or run it."""
    parser = argparse.ArgumentParser(prog="python -m flows.image", description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="checkout to build (default: cwd)")
    parser.add_argument("--repository", default="deliverypipeline", help="image name without tag")
    parser.add_argument("--base-image", default=DEFAULT_BASE_IMAGE)
    parser.add_argument("--smoke", action="store_true", help="smoke-test the built image")
    parser.add_argument("--push", action="store_true", help="push to the registry named in --repository")
    parser.add_argument("--run", metavar="HOST:PORT", help=f"serve it as container {DEMO_CONTAINER}")
    parser.add_argument("--quiet", action="store_true", help="do not print the build log")
    args = parser.parse_args(argv)

    import docker  # the pipeline extra; imported here so --help works without it

    def log(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    client = docker.from_env()
    try:
        started = time.monotonic()
        info, built = build_release(
            client, args.project.resolve(), args.repository, log=log, base_image=args.base_image
        )
        print(f"built {built.tag} in {time.monotonic() - started:.1f}s ({built.image_id[:19]})")
        if args.smoke:
            result = smoke_test(client, built.tag, info.version, deadline_s=60, log=log)
            print(f"smoke test passed: healthy after {result.seconds_to_healthy:.1f}s")
        if args.push:
            digest = push_image(client, args.repository, info.version, log=log)
            print(f"pushed {built.tag}@{digest}")
        if args.run:
            url = run_detached(client, built.tag, args.run, DEMO_CONTAINER)
            print(f"{built.tag} is serving at {url}/  (stop it: docker rm -f {DEMO_CONTAINER})")
    except BuildStepError as exc:
        print(f"flows.image: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0
