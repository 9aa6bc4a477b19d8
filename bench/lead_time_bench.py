"""Lead time of `make demo` for a new commit: this checkout against an earlier commit, both warm.

Each round commits a change in a scratch clone and runs what `make demo` runs (its host check
`scripts/setup-host.sh`, `deliverypipeline run`, then `deliverypipeline local status`) on a
private local target (free ports, temp state), timing the three together (wall) and each step
(from the streamed log lines). "after" is this checkout (with its working tree's changes); "before" is
`--before REF` (default HEAD). Each side has its own warm control plane, as a checkout's
`make demo` has. Runs alternate, medians are printed side by side. Target: after <= 30 s wall.

With `--fleet N`, the same whole release of a new commit of this checkout goes to the local
target ("before", the baseline) and to a local swarm of N nodes ("after": `make fleet-demo`'s
`deliverypipeline run --target swarm`, then `swarm status`; the lab is brought up if none is).
Target: the swarm's release <= 1.5x the local target's.

    .venv/bin/python bench/lead_time_bench.py --rounds 3 [--before REF | --fleet 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.targets.swarm.settings import LAB_STATE_DIR, STORE_CONFIG  # noqa: E402

STEP = re.compile(r"\d\d:\d\d:\d\d\s+\w+\s+(?P<step>[a-z ]+)-[0-9a-f]+: ")
TARGET_S = 30.0
SWARM_TEARDOWN = (  # `SwarmTarget.down` of the bench's swarm side, its config file the argument
    "import sys; from pathlib import Path; from flows.config import for_target, load_config; "
    "from flows.targets.swarm.target import SwarmTarget; "
    "config = load_config(Path(sys.argv[1]), {'application': 'leadbench'}); "
    "print(SwarmTarget(for_target(config, 'swarm')).down())"
)
FLEET_RATIO = 1.5  # the goal of a release to a local swarm against one to the local target


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(repo: Path, *args: str) -> None:
    """Run git quietly in `repo`."""
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    done = subprocess.run(["git", "-C", str(repo), *identity, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo} failed: {done.stderr.strip()}")


def clone(ref: str, destination: Path, with_working_tree: bool) -> Path:
    """`ref` of this repository (plus, for "after", the working tree's changes) committed in a clone."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(destination)], check=True)
    git(destination, "checkout", "-q", ref)
    if with_working_tree:
        listed = subprocess.run(
            ["git", "ls-files", "-m", "-o", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for relative in filter(None, listed.split("\0")):
            if (ROOT / relative).is_file():
                (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / relative, destination / relative)
    git(destination, "checkout", "-q", "-B", "bench")
    git(destination, "add", "-A")
    git(destination, "commit", "-q", "--allow-empty", "-m", "bench base")
    return destination


def start_lab(nodes: int, env: dict[str, str]) -> bool:
    """Bring up a local swarm of `nodes` nodes unless one answers (it must have that many nodes);
    whether this started it."""
    cli = [sys.executable, "-m", "flows.cli.main", "swarm"]
    status = subprocess.run([*cli, "status"], cwd=ROOT, env=env, capture_output=True, text=True)
    if status.returncode == 0:
        found = sum(line.startswith("node-") for line in status.stdout.splitlines())
        if found != nodes:
            raise SystemExit(f"a swarm lab of {found} node(s) is up; `deliverypipeline swarm down` it first")
        return False
    subprocess.run([*cli, "up", "--nodes", str(nodes)], cwd=ROOT, env=env, check=True)
    return True


def release(
    repo: Path, state: Path, ports: tuple[int, int], env: dict[str, str], target: str = "local"
) -> tuple[float, dict[str, float], int]:
    """Commit a change and release it to `target` (local or swarm); wall seconds, seconds per step
    and phase, exit code."""
    (repo / "BENCH").write_text(str(time.time_ns()))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bench change")
    entry = "flows.cli.main" if (repo / "flows" / "cli" / "main.py").exists() else "flows.cli"  # older layout
    where = [
        "--prod-address", f"127.0.0.1:{ports[0]}", "--preprod-address", f"127.0.0.1:{ports[1]}",
        "--application", "leadbench",
    ]  # fmt: skip
    if target == "local":
        where += ["--state-dir", str(state / "target")]
    else:  # the swarm's service ports and state of this side (see main)
        where += ["--config", env["DELIVERY_BENCH_CONFIG"]]
    args = [sys.executable, "-m", entry, "run", "--repo", ".", "--ref", "HEAD", "--target", target, *where]
    args += ["--image-repository", "leadbench"]
    status = [sys.executable, "-m", entry, target, "status", *where]
    run_env = {**env, "PYTHONPATH": str(repo)}
    started = time.monotonic()
    subprocess.run(["bash", "scripts/setup-host.sh"], cwd=repo, env=run_env, capture_output=True, check=True)
    run_started = time.monotonic()
    lines: list[tuple[float, str]] = []  # each line of the run's output, as it arrived
    with subprocess.Popen(
        args, cwd=repo, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as running:
        assert running.stdout is not None
        for line in running.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
    run_ended = time.monotonic()
    if running.returncode == 0:
        subprocess.run(status, cwd=repo, env=run_env, capture_output=True, check=True)
    wall = time.monotonic() - started
    if running.returncode != 0:
        tail = "\n".join(line for _, line in lines[-12:])
        side = repo.parent.name
        print(f"release in {side} exited {running.returncode}:\n{tail}", file=sys.stderr, flush=True)
    return wall, phases(lines, started, run_started, run_ended, wall), running.returncode


def phases(
    lines: list[tuple[float, str]], started: float, run_started: float, run_ended: float, wall: float
) -> dict[str, float]:
    """Seconds per step (its first to its last log line, as they arrived) and around the steps."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for at, line in lines:
        match = STEP.match(line)
        if match:
            first.setdefault(match.group("step"), at)
            last[match.group("step")] = at
    seconds = {step: last[step] - first[step] for step in first}
    if first:
        seconds["0 host check"] = run_started - started
        seconds["1 to the first step"] = min(first.values()) - run_started
        seconds["2 after the last step"] = run_ended - max(last.values())
        seconds["3 local status"] = wall - (run_ended - started)
    return seconds


def main() -> int:
    """Alternate before/after releases and print the medians."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="HEAD", help="the commit measured as 'before' (default HEAD)")
    parser.add_argument(
        "--fleet", type=int, metavar="NODES", help="compare releases to a local swarm of NODES nodes instead"
    )
    options = parser.parse_args()
    # Per side: the clone released (repo/), its control plane (plane/), kept checkouts, target.
    work = Path(tempfile.mkdtemp(prefix="lead-time-bench-"))
    # each side its own target: one target per address (the second would be refused, rightly)
    ports = {name: (free_port(), free_port()) for name in ("before", "after")}
    # Each side its own control plane too, as each checkout's `make demo` has when it is warm: one
    # shared plane would redeploy its deployments from the other checkout before every run.
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    envs = {
        name: {
            **base,
            "DELIVERY_STATE_DIR": str(work / name / "plane"),
            "PREFECT_PORT": str(free_port()),
            "DELIVERYPIPELINE_WORK_DIR": str(work / name / "checkouts"),
        }
        for name in ("before", "after")
    }
    fleet = options.fleet is not None
    targets = {"before": "local", "after": "swarm" if fleet else "local"}
    repos = {
        "before": clone(
            "HEAD" if fleet else options.before, work / "before" / "repo", with_working_tree=fleet
        ),
        "after": clone("HEAD", work / "after" / "repo", with_working_tree=True),
    }
    lab_started = False
    if fleet:  # the swarm side's own service ports and state: the lab may serve `make fleet-demo` too
        try:
            lab_started = start_lab(options.fleet, envs["after"])
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        swarm = {"ports": [free_port(), free_port()], "state_dir": str(work / "after" / "swarm")}
        if (LAB_STATE_DIR / STORE_CONFIG).is_file():  # the lab's PostgreSQL, as `make fleet-demo` has
            swarm["store_config"] = str(LAB_STATE_DIR / STORE_CONFIG)
        (work / "after" / "fleet.json").write_text(json.dumps({"swarm": swarm}))
        envs["after"]["DELIVERY_BENCH_CONFIG"] = str(work / "after" / "fleet.json")
    walls: dict[str, list[float]] = {"before": [], "after": []}
    failed: dict[str, int] = {"before": 0, "after": 0}  # a failed release is no lead time
    per_step: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    try:
        # a warm-up of each: the control plane started, images' layers cached
        for name, repo in repos.items():
            release(repo, work / name, ports[name], envs[name], targets[name])
        for round_number in range(options.rounds):
            for name, repo in repos.items():
                wall, seconds, code = release(repo, work / name, ports[name], envs[name], targets[name])
                print(f"round {round_number + 1} {name:<6} {wall:6.1f}s wall, exit {code}", flush=True)
                if code != 0:
                    failed[name] += 1
                    continue
                walls[name].append(wall)
                for step, value in seconds.items():
                    per_step[name].setdefault(step, []).append(value)
    finally:
        for name, repo in repos.items():  # the local targets' containers and proxies, the control planes
            entry = "flows.cli.main" if (repo / "flows" / "cli" / "main.py").exists() else "flows.cli"
            prod, preprod = (f"127.0.0.1:{port}" for port in ports[name])
            if targets[name] == "local":  # a swarm side's services stay on the lab (one started here goes)
                subprocess.run(
                    [sys.executable, "-m", entry, "local", "down", "--purge",
                     "--state-dir", str(work / name / "target"), "--application", "leadbench",
                     "--prod-address", prod, "--preprod-address", preprod],
                    cwd=repo, env={**envs[name], "PYTHONPATH": str(repo)}, capture_output=True, check=False,
                )  # fmt: skip
            subprocess.run(
                [sys.executable, "-m", entry, "server", "stop"], cwd=repo,
                env={**envs[name], "PYTHONPATH": str(repo)}, capture_output=True, check=False,
            )  # fmt: skip
        if fleet:  # the swarm side's services and edge proxy, then a lab this run started
            subprocess.run(
                [sys.executable, "-c", SWARM_TEARDOWN, envs["after"]["DELIVERY_BENCH_CONFIG"]],
                cwd=ROOT, check=False,
            )  # fmt: skip
        if lab_started:
            subprocess.run([sys.executable, "-m", "flows.cli.main", "swarm", "down"], cwd=ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)
    labels = ("local", f"swarm {options.fleet}") if fleet else ("before", "after")
    print(f"\n{'median of ' + str(options.rounds):<22}{labels[0]:>10}{labels[1]:>10}")
    for step in sorted(set(per_step["before"]) | set(per_step["after"])):
        cells = [
            statistics.median(per_step[n][step]) if per_step[n].get(step) else float("nan") for n in walls
        ]
        print(f"{step:<22}{cells[0]:>9.2f}s{cells[1]:>9.2f}s")
    before, after = (statistics.median(walls[n]) if walls[n] else float("nan") for n in walls)
    if fleet:
        met = failed["after"] == 0 and after <= FLEET_RATIO * before
        goal = f"{after / before:.2f}x, target swarm <= {FLEET_RATIO}x local: {'ok' if met else 'MISSED'}"
    else:
        met = failed["after"] == 0 and after <= TARGET_S
        goal = f"target after <= {TARGET_S:.0f}s: {'ok' if met else 'MISSED'}"
    print(f"{'wall':<22}{before:>9.1f}s{after:>9.1f}s   {goal}")
    if any(failed.values()):
        print(f"failed releases (not counted): before {failed['before']}, after {failed['after']}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
