"""Fleet benchmark: the target-specific part of a release on a local swarm of 1, 2 and 3 nodes
against the local target's, and prod under load over releases.

What it times is the part of a release that differs between targets, through the pipeline's
own operations: deploy the new version to preprod, wait until it is ready (`wait_until_ready`:
Ready, Green, serving exactly that version), swap. Each target gets one warm-up release (first
pulls), then `--rounds` releases cycling three versions (so each deploy changes preprod); the
median is printed against the local target's, measured in the same run, with each step's
median (deploy call, until ready, swap). During the largest swarm's releases, wrk's keep-alive
clients (`--connections`, 32) load prod for `--load-seconds`; releases go on (untimed) until the
load ends, so every request is made over releases. Every non-2xx answer and socket error
counts as failed.

The goal checked here: 0 failed of at least `--min-requests` (30,000) requests. The release-time
goal (a warm release of a new commit to 3 nodes at most 1.5x the local target's) is about the
whole release and is checked by `bench/lead_time_bench.py --fleet 3`; the part timed here is
where the two targets differ: Swarm's own update (stop-first on the environment's port, then the
new task's health check) costs a few seconds, about the same for 1, 2 or 3 nodes.

Usage (root, Docker, HAProxy, wrk): .venv/bin/python bench/fleet_bench.py [--rounds 3] [--nodes 1 2 3]
  [--load-seconds 90 --connections 32 --min-requests 30000]
Exit code 0 when no request failed of at least `--min-requests`.
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


Steps = dict[str, float]  # step -> seconds: deploy (the call), ready (until ready), swap


def release(target: Target, config: PipelineConfig, version: str) -> Steps:
    """Deploy `version` to preprod, wait until ready, swap; the seconds each step took."""
    target.register_version(version, {"Image": {"Name": f"{IMAGE}:{version}"}})
    environments = target.environments()
    preprod = next(env for env in environments if env.address == config.preprod_address)
    prod = next(env for env in environments if env.address == config.prod_address)
    marks = [time.monotonic()]
    target.deploy(preprod.name, version)
    marks.append(time.monotonic())
    wait_until_ready(target, preprod.name, version, config, since=datetime.now(UTC))
    marks.append(time.monotonic())
    target.swap(prod.name, preprod.name)
    marks.append(time.monotonic())
    steps = {step: marks[n + 1] - marks[n] for n, step in enumerate(("deploy", "ready", "swap"))}
    return {**steps, "release": marks[-1] - marks[0]}


def timed_releases(target: Target, config: PipelineConfig, rounds: int) -> list[Steps]:
    """One warm-up release, then `rounds` timed ones cycling the versions."""
    release(target, config, VERSIONS[0])
    return [release(target, config, next_version(n)) for n in range(rounds)]


def medians(runs: list[Steps]) -> Steps:
    """Each step's median over the runs."""
    return {step: statistics.median(run[step] for run in runs) for step in runs[0]}


def shown(steps: Steps) -> str:
    """`deploy 0.3 s, ready 9.1 s, swap 0.1 s`."""
    return ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items() if step != "release")


def next_version(n: int) -> str:
    """The version of timed release `n` (after the warm-up's first one)."""
    return VERSIONS[(n + 1) % len(VERSIONS)]


def wrk(url: str, seconds: int, connections: int) -> subprocess.Popen[str]:
    """wrk with `connections` keep-alive connections on `url` for `seconds`, in the background."""
    return subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", url],
        stdout=subprocess.PIPE,
        text=True,
    )


def wrk_figures(output: str) -> tuple[int, int]:
    """(requests, failed) from wrk's report: non-2xx/3xx answers and socket errors fail."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed += sum(int(n) for n in errors.groups()) if errors else 0
    return requests, failed


def local_run(rounds: int, client: Any, tmp: Path) -> list[Steps]:
    """The local target's releases."""
    config = config_for(tmp / "local", local=LocalSettings(state_dir=tmp / "local", drain_seconds=0.5))
    target = LocalTarget(config, client=client)
    try:
        return timed_releases(target, config, rounds)
    finally:
        target.down(purge=True)


def swarm_run(
    nodes: int, rounds: int, tmp: Path, load: tuple[int, int, str] | None
) -> tuple[list[Steps], tuple[int, int, int] | None]:
    """A lab of `nodes` nodes, its releases, and under `load` (seconds, connections, path) wrk's
    figures: (requests, failed, releases made during the load)."""
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
        run_dir=layout.run_dir,
        nodes=nodes,
        ports=(free_port(), free_port()),
        state_dir=tmp / f"swarm{nodes}",
        min_nodes=nodes,
    )
    config = config_for(tmp / f"swarm{nodes}", swarm=swarm)
    target = SwarmTarget(config)
    try:
        release(target, config, VERSIONS[0])
        clients = wrk(f"http://{config.prod_address}{load[2]}", load[0], load[1]) if load else None
        times = [release(target, config, next_version(n)) for n in range(rounds)]
        if clients is None:
            return times, None
        made = rounds
        while clients.poll() is None:  # releases all along the load: every request is over one
            release(target, config, next_version(made))
            made += 1
        output, _ = clients.communicate(timeout=30)
        return times, (*wrk_figures(output), made)
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
    parser.add_argument("--connections", type=int, default=32, help="wrk's keep-alive clients (32)")
    parser.add_argument("--load-path", default="/", help="the path wrk requests on prod (/)")
    parser.add_argument(
        "--min-requests", type=int, default=30000, help="requests the load must reach to meet the goal"
    )
    args = parser.parse_args()
    import docker

    client = docker.from_env()
    build_versions(client)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    tmp.chmod(0o755)  # the lab's PostgreSQL runs as the `postgres` user: it must enter the lab's dirs
    try:
        local_steps = medians(local_run(args.rounds, client, tmp))
        local = local_steps["release"]
        print(f"local target: release median {local:.1f} s over {args.rounds} ({shown(local_steps)})")
        results = {}
        for nodes in args.nodes:
            loaded = nodes == max(args.nodes) and args.load_seconds > 0
            load = (args.load_seconds, args.connections, args.load_path) if loaded else None
            times, figures = swarm_run(nodes, args.rounds, tmp, load)
            steps = medians(times)
            median = steps["release"]
            results[nodes] = (median, figures)
            line = (
                f"swarm, {nodes} node(s): median {median:.1f} s ({median / local:.2f}x local; {shown(steps)})"
            )
            if figures is not None:
                line += (
                    f"; prod under wrk -c{args.connections} for {args.load_seconds} s over {figures[2]} "
                    f"releases: {figures[0]} requests, {figures[1]} failed"
                )
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _, figures = results[max(args.nodes)]
    ok = figures is not None and figures[1] == 0 and figures[0] >= args.min_requests
    goal = f"0 failed of >= {args.min_requests} requests over {max(args.nodes)}-node releases"
    print(f"target: {goal}: {'met' if ok else 'NOT met'} (release time: bench/lead_time_bench.py --fleet 3)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
