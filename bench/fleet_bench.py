"""Fleet benchmark: a warm release on a local swarm of 1, 2 and 3 nodes against the local target.

What it times is the part of a release that differs between targets, through the pipeline's
own operations: deploy the new version to preprod, wait until it is ready (`wait_until_ready`:
Ready, Green, serving exactly that version), swap. Each target gets one warm-up release (first
pulls), then `--rounds` releases cycling three versions (so each deploy changes preprod); the
median is printed against the local target's, measured in the same run. During the largest
swarm's releases, wrk's 32 keep-alive clients load prod; every non-2xx answer and socket error
counts as failed.

Usage (root, Docker, HAProxy, wrk): .venv/bin/python bench/fleet_bench.py [--rounds 3] [--nodes 1 2 3]
Exit code 0 when the 3-node release takes at most 1.5x the local one and no request failed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.config import Deadlines, PipelineConfig  # noqa: E402
from flows.image.push import push_image  # noqa: E402
from flows.release.waits import wait_until_ready  # noqa: E402
from flows.targets.base import Target  # noqa: E402
from flows.targets.local.settings import LocalSettings  # noqa: E402
from flows.targets.local.target import LocalTarget  # noqa: E402
from flows.targets.swarm.lab_executor import LabExecutor  # noqa: E402
from flows.targets.swarm.lab_plans import LabLayout  # noqa: E402
from flows.targets.swarm.settings import SwarmSettings  # noqa: E402
from flows.targets.swarm.target import SwarmTarget  # noqa: E402
from tests.support import free_port  # noqa: E402

IMAGE = "127.0.0.1:5000/dp-fleet-bench"
VERSIONS = ("b1", "b2", "b3")  # three: preprod never already runs the version it is given


def build_versions(client: Any) -> None:
    """The webapp image as each version (its /health says which), pushed to the host registry."""
    from flows.image.wheelhouse import ensure_wheelhouse

    ensure_wheelhouse(ROOT)
    for version in VERSIONS:
        client.images.build(path=str(ROOT), tag=f"{IMAGE}:{version}", buildargs={"VERSION": version}, rm=True)
        push_image(client, IMAGE, version, log=lambda _: None)


def config_for(state_dir: Path, **sections: Any) -> PipelineConfig:
    """A config on free edge addresses, with the pipeline's default deadlines and a 0.5 s poll."""
    return PipelineConfig(
        application=f"fleetbench{free_port()}",
        prod_address=f"127.0.0.1:{free_port()}",
        preprod_address=f"127.0.0.1:{free_port()}",
        deadlines=Deadlines(ready=180, poll_interval=0.5, health_grace=0),
        **sections,
    )


def release(target: Target, config: PipelineConfig, version: str) -> float:
    """Deploy `version` to preprod, wait until ready, swap; the seconds it took."""
    target.register_version(version, {"Image": {"Name": f"{IMAGE}:{version}"}})
    preprod = next(env for env in target.environments() if env.address == config.preprod_address)
    prod = next(env for env in target.environments() if env.address == config.prod_address)
    started = time.monotonic()
    target.deploy(preprod.name, version)
    wait_until_ready(target, preprod.name, version, config, since=datetime.now(UTC))
    target.swap(prod.name, preprod.name)
    return time.monotonic() - started


def timed_releases(target: Target, config: PipelineConfig, rounds: int) -> list[float]:
    """One warm-up release, then `rounds` timed ones cycling the versions."""
    release(target, config, VERSIONS[0])
    return [release(target, config, next_version(n)) for n in range(rounds)]


def next_version(n: int) -> str:
    """The version of timed release `n` (after the warm-up's first one)."""
    return VERSIONS[(n + 1) % len(VERSIONS)]


def wrk(url: str, seconds: int) -> subprocess.Popen[str]:
    """wrk with 32 keep-alive connections on `url` for `seconds`, in the background."""
    return subprocess.Popen(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "--timeout", "5s", url], stdout=subprocess.PIPE, text=True
    )


def wrk_figures(output: str) -> tuple[int, int]:
    """(requests, failed) from wrk's report: non-2xx/3xx answers and socket errors fail."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed += sum(int(n) for n in errors.groups()) if errors else 0
    return requests, failed


def local_run(rounds: int, client: Any, tmp: Path) -> list[float]:
    """The local target's releases."""
    config = config_for(tmp / "local", local=LocalSettings(state_dir=tmp / "local", drain_seconds=0.5))
    target = LocalTarget(config, client=client)
    try:
        return timed_releases(target, config, rounds)
    finally:
        target.down(purge=True)


def swarm_run(nodes: int, rounds: int, tmp: Path, load_s: int) -> tuple[list[float], tuple[int, int] | None]:
    """A lab of `nodes` nodes, its releases, and wrk's figures when `load_s` > 0."""
    layout = LabLayout(
        nodes=nodes,
        run_dir=Path("/run/dpswb"),
        state_dir=tmp / f"lab{nodes}",
        subnet="10.234.0",
        bridge="dpswb0",
        prefix="dpswb",
    )
    lab = LabExecutor(say=lambda _: None)
    lab.up(layout)
    swarm = SwarmSettings(
        manager=f"unix://{layout.node(1).socket}",
        registry=layout.registry,
        nodes=nodes,
        ports=(free_port(), free_port()),
        state_dir=tmp / f"swarm{nodes}",
        min_nodes=nodes,
    )
    config = config_for(tmp / f"swarm{nodes}", swarm=swarm)
    target = SwarmTarget(config)
    try:
        release(target, config, VERSIONS[0])
        load = wrk(f"http://{config.prod_address}/", load_s) if load_s else None
        times = [release(target, config, next_version(n)) for n in range(rounds)]
        figures = None
        if load is not None:
            output, _ = load.communicate(timeout=load_s + 30)
            figures = wrk_figures(output)
        return times, figures
    finally:
        target.down()
        target.engine.close()
        lab.down(layout)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--load-seconds", type=int, default=45, help="wrk on prod during the largest swarm's releases"
    )
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    build_versions(client)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    try:
        local = statistics.median(local_run(args.rounds, client, tmp))
        print(f"local target: release (deploy, ready, swap) median {local:.1f} s over {args.rounds}")
        results = {}
        for nodes in args.nodes:
            load_s = args.load_seconds if nodes == max(args.nodes) else 0
            times, figures = swarm_run(nodes, args.rounds, tmp, load_s)
            median = statistics.median(times)
            results[nodes] = (median, figures)
            line = f"swarm, {nodes} node(s): median {median:.1f} s ({median / local:.2f}x local)"
            if figures is not None:
                line += f"; prod under wrk -c32: {figures[0]} requests, {figures[1]} failed"
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    largest, figures = results[max(args.nodes)]
    ok = largest <= 1.5 * local and figures is not None and figures[1] == 0
    print(f"target: {max(args.nodes)} nodes <= 1.5x local and 0 failed: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
