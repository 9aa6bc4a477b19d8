"""Zero-downtime benchmark: 32 keep-alive clients on prod while the pipeline releases back to back.

What it does, all on 127.0.0.1 with a temp state dir, free ports and its own Prefect test server:
1. copies this working tree into a temp git repository (committed) and releases it once
   (the warm-up: base image, wheelhouse and Docker layers cached from here on);
2. starts 32 concurrent clients (`GET /`, the counted endpoint) on the prod address;
3. releases N new commits back to back (each a trivial change, committed, then the flow),
   timing commit -> verified on prod;
4. releases one more commit whose prod verification is made to fail (the pipeline swaps
   back), then re-runs the flow for that commit and times the re-run;
5. stops the clients and prints total and failed requests, p99 during the swaps against the
   steady state measured in the same run, commit->prod times and the re-run time, each
   against its target.

Usage: .venv/bin/python bench/zero_downtime_bench.py [--deploys 3] [--clients 32]
Exit code 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.config import PipelineConfig  # noqa: E402
from flows.release.probe import Probe  # noqa: E402
from flows.release.probe_stats import Sample, percentile  # noqa: E402
from flows.release.settings import UserPath  # noqa: E402

SKIP_NAMES = {
    ".venv",
    ".git",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".wheelhouse",
    ".state",
    "__pycache__",
}
TARGET_FAILED = 0
TARGET_MIN_REQUESTS = 10_000
TARGET_COMMIT_TO_PROD_S = 45.0
TARGET_RERUN_S = 15.0
SWAP_MARGIN_S = 1.0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` as the bench's committer."""
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def make_repo(dest: Path) -> Path:
    """This working tree, uncommitted files included, committed into a fresh repository."""
    shutil.copytree(
        ROOT,
        dest,
        symlinks=True,
        ignore=lambda _d, names: {n for n in names if n in SKIP_NAMES or n.endswith(".egg-info")},
    )
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "bench: the project as it is")
    git(dest, "tag", "v1.0.0")
    return dest


def trivial_commit(repo: Path, n: int) -> tuple[str, float]:
    """Commit a one-line change to the webapp; returns (commit, wall time of the commit)."""
    note = repo / "webapp" / "release_note.txt"
    note.write_text(f"bench release {n} at {time.time()}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"bench release {n}")
    return git(repo, "rev-parse", "HEAD"), time.time()


@dataclass
class Release:
    """One timed flow run."""

    label: str
    commit: str
    ok: bool
    seconds: float  # commit (or re-run start) -> flow finished (prod verified)
    outcome: str
    swap_windows: list[tuple[float, float]] = field(default_factory=list)  # wall clock
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds

    def breakdown(self) -> str:
        """The slowest steps, for the printout."""
        top = sorted(self.steps.items(), key=lambda kv: -kv[1])[:4]
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in top)


def swap_windows(state: Any) -> list[tuple[float, float]]:
    """Wall-clock start/end of the run's `swap` and `swap back` task runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    windows = []
    for run in runs:
        if run.name.rsplit("-", 1)[0] in ("swap", "swap back") and run.start_time and run.end_time:
            windows.append((run.start_time.timestamp(), run.end_time.timestamp()))
    return windows


def release(repo: Path, ref: str, config: PipelineConfig, label: str, since: float) -> Release:
    """Run the flow for `ref`; time it from `since` (wall clock)."""
    from flows.pipeline import pipeline

    state = pipeline(repo=str(repo), ref=ref, target="local", config=config, return_state=True)
    seconds = time.time() - since
    result: Any = state.result(raise_on_failure=False)
    outcome = result["outcome"] if state.is_completed() else f"{type(result).__name__}: {result}"
    steps = result.get("durations", {}) if isinstance(result, dict) else {}
    return Release(label, ref, state.is_completed(), seconds, str(outcome)[:160], swap_windows(state), steps)


class LoadProcess:
    """The clients in a child process, niced: they stand for users on other machines, so they
    should not starve the pipeline's own work on this host. Samples come back as JSON."""

    def __init__(self, url: str, clients: int, max_seconds: float, out: Path, nice: int) -> None:
        self.out = out
        command = ["nice", "-n", str(nice), sys.executable, __file__, "--load-worker"]
        command += [url, str(clients), str(max_seconds), str(out)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.t0_wall = float(self.process.stdout.readline())  # the worker's wall time at its t=0

    def stop(self) -> list[Sample]:
        """Stop the clients (close their stdin) and read their samples."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=120)
        rows = json.loads(self.out.read_text()) if self.out.exists() else []
        return [Sample(*row) for row in rows]


def load_worker(url: str, clients: int, max_seconds: float, out: Path) -> int:
    """Child process: run the clients until stdin closes, then write the samples to `out`."""
    load = Probe(
        url,
        threads=clients,
        paths=[UserPath(path="/", accept="text/html")],
        max_requests=5_000_000,
        max_seconds=max_seconds,
        timeout_s=10,
    )
    load.start()
    print(time.time() - load.now(), flush=True)
    sys.stdin.read()
    load.stop()
    out.write_text(json.dumps([[s.start, s.latency, s.ok, s.detail] for s in load.samples()]))
    return 0


def in_window(sample: Sample, t0_wall: float, windows: list[tuple[float, float]]) -> bool:
    """Whether a load sample overlaps any swap window (with the probe stats' margin)."""
    start, end = t0_wall + sample.start, t0_wall + sample.end
    return any(end >= a - SWAP_MARGIN_S and start <= b + SWAP_MARGIN_S for a, b in windows)


def ms(value: float | None) -> str:
    """Seconds as milliseconds for the table."""
    return "-" if value is None else f"{value * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--deploys", type=int, default=3, help="back-to-back releases under load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients on prod")
    parser.add_argument("--max-seconds", type=float, default=600, help="cap on the load's duration")
    parser.add_argument("--nice", type=int, default=10, help="niceness of the load process (0: none)")
    parser.add_argument("--load-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_worker:
        url, clients, seconds, out = args.load_worker
        return load_worker(url, int(clients), float(seconds), Path(out))

    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.release import tasks as release_steps
    from flows.release.health import HealthReport, fetch_health
    from flows.targets.local.target import LocalTarget

    pid = os.getpid()
    base = Path(tempfile.mkdtemp(prefix=f"deliverypipeline-bench-{pid}-"))
    os.environ["DELIVERYPIPELINE_WORK_DIR"] = str(base / "work")
    config = PipelineConfig.model_validate(
        {
            "application": f"bench-{pid}",
            "prod_address": f"127.0.0.1:{free_port()}",
            "preprod_address": f"127.0.0.1:{free_port()}",
            "image_repository": f"deliverypipeline-bench-{pid}",
            "deadlines": {"verify": 10, "ready": 120, "poll_interval": 0.5},
            "local": {"state_dir": str(base / "state"), "stop_grace": 2},
        }
    )
    target = LocalTarget(config)
    releases: list[Release] = []
    load: LoadProcess | None = None
    samples: list[Sample] = []
    t0_wall = 0.0
    try:
        with (
            prefect_test_harness(),
            temporary_settings(
                updates={"results.local_storage_path": base / "results", "flows.heartbeat_frequency": None}
            ),
        ):
            repo = make_repo(base / "repo")
            print(f"bench: repo {repo}, prod {config.prod_address}, preprod {config.preprod_address}")
            warm = release(
                repo, git(repo, "rev-parse", "HEAD"), config, "warm-up (first release)", time.time()
            )
            print(f"bench: {warm.label}: {warm.seconds:.1f}s {warm.outcome}")
            if not warm.ok:
                return 1

            load = LoadProcess(
                f"http://{config.prod_address}", args.clients, args.max_seconds, base / "load.json", args.nice
            )
            t0_wall = load.t0_wall
            time.sleep(3)  # steady state before the first release
            for n in range(1, args.deploys + 1):
                commit, committed = trivial_commit(repo, n)
                releases.append(release(repo, commit, config, f"release {n}", committed))
                print(f"bench: {releases[-1].label}: {releases[-1].seconds:.1f}s {releases[-1].outcome}")

            commit, committed = trivial_commit(repo, args.deploys + 1)

            def refuse(url: str) -> HealthReport:
                return HealthReport(url, 503, None, error="HTTP 503 (injected by the bench)")

            release_steps.prod_health_check = refuse
            try:
                failed = release(repo, commit, config, "failed verification", committed)
            finally:
                release_steps.prod_health_check = fetch_health
            print(f"bench: {failed.label}: {failed.seconds:.1f}s {failed.outcome}")
            rerun_start = time.time()
            rerun = release(repo, commit, config, "re-run after failed verification", rerun_start)
            print(f"bench: {rerun.label}: {rerun.seconds:.1f}s {rerun.outcome}")
            time.sleep(3)  # steady state after the last release
            samples = load.stop()
    finally:
        if load is not None:
            load.stop()
        target.down(purge=True)
        _remove_images(config.image_repository)
        shutil.rmtree(base, ignore_errors=True)

    windows = [w for r in [*releases, failed, rerun] for w in r.swap_windows]
    during = [s for s in samples if in_window(s, t0_wall, windows)]
    steady = [s for s in samples if not in_window(s, t0_wall, windows)]
    failures = [s for s in samples if not s.ok]
    p99_steady = percentile([s.latency for s in steady if s.ok], 99)
    p99_during = percentile([s.latency for s in during if s.ok], 99)
    warm_times = [r.seconds for r in releases if r.ok]
    duration = max((s.end for s in samples), default=0.0)

    print()
    print(f"load process niceness: +{args.nice}")
    print(f"clients: {args.clients} keep-alive on GET http://{config.prod_address}/ for {duration:.1f}s")
    print(f"swaps under load: {len(windows)} (releases, swap back and re-run)")
    print(f"total requests: {len(samples)} ({len(samples) / max(duration, 1e-9):.0f}/s)")
    print(f"failed requests: {len(failures)}   target: {TARGET_FAILED} of >= {TARGET_MIN_REQUESTS}")
    for sample in failures[:10]:
        print(f"  failed at {sample.start:.3f}s: {sample.detail}")
    print(f"p99 steady state (baseline, this run): {ms(p99_steady)} over {len(steady)} requests")
    print(f"p99 during swaps (+-{SWAP_MARGIN_S:.0f}s): {ms(p99_during)} over {len(during)} requests")
    print(
        f"p50 steady / during: {ms(percentile([s.latency for s in steady if s.ok], 50))} / "
        f"{ms(percentile([s.latency for s in during if s.ok], 50))}"
    )
    for r in releases:
        print(f"commit->prod {r.label}: {r.seconds:.1f}s ({'ok' if r.ok else 'FAILED'}; {r.breakdown()})")
    worst = max(warm_times, default=float("inf"))
    if warm_times:
        print(
            f"commit->prod warm: median {statistics.median(warm_times):.1f}s, worst {worst:.1f}s   "
            f"target: <= {TARGET_COMMIT_TO_PROD_S:.0f}s"
        )
    print(f"failed verification run: {failed.seconds:.1f}s ({failed.outcome})")
    print(
        f"re-run after failed verification: {rerun.seconds:.1f}s ({'ok' if rerun.ok else 'FAILED'}; "
        f"{rerun.breakdown()})   "
        f"target: <= {TARGET_RERUN_S:.0f}s"
    )
    met = (
        len(failures) == TARGET_FAILED
        and len(samples) >= TARGET_MIN_REQUESTS
        and len(warm_times) == len(releases)
        and worst <= TARGET_COMMIT_TO_PROD_S
        and not failed.ok
        and rerun.ok
        and rerun.seconds <= TARGET_RERUN_S
    )
    print(f"targets {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


def _remove_images(repository: str) -> None:
    try:
        import docker

        client = docker.from_env()
        for image in client.images.list():
            for tag in image.tags:
                if f"/{repository}:" in tag:
                    client.images.remove(tag, force=True)
    except Exception as exc:  # cleanup must not hide the figures
        print(f"bench: could not remove images of {repository}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
