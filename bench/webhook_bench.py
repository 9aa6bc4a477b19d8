"""Webhook load benchmark: N concurrent signed pushes against a real Prefect server (SQLite).

What it does, all on 127.0.0.1 with free ports and a temp PREFECT_HOME:
1. starts `prefect server start` (SQLite) and creates two deployments of the flow
   `deliverypipeline` without a work pool (nothing runs them; only run creation is measured);
2. starts the receiver as `make serve` does (`deliverypipeline webhook`, its own process) and
   sends N distinct signed pushes to `main` at once (a series, each over the previous commit),
   then the same N deliveries again (GitHub's "Redeliver": each must return the run it created
   the first time);
3. waits until the receiver has cancelled the N-1 older runs as superseded by the newest (the
   pushes' own `before` fields chain them: no git needed);
4. the baseline, in the same run against the same server: N concurrent run creations straight
   through Prefect's own client, one client per delivery (what the receiver once did), with the
   receiver's 8 s deadline;
5. prints accepted, p50/p99 and runs created for both, and checks the targets.

Usage: .venv/bin/python bench/webhook_bench.py [--deliveries 20] [--api-url URL]
Exit code 0 when every target is met (all accepted, p99 <= 1 s, one run per delivery), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.webhook.signature import sign  # noqa: E402
from tests.e2e.servers import background, wait_http  # noqa: E402 - the suite's process helpers
from tests.e2e.servers import prefect_env as isolated_env  # noqa: E402
from tests.support import free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
# `deliverypipeline webhook` run as `python -m` (the code of the console script, however it was generated).
RECEIVER_COMMAND = (sys.executable, "-m", "flows.cli.main")
FLOW = "deliverypipeline"
TARGET_P99_S = 1.0
DEADLINE_S = 8.0  # the receiver's --prefect-timeout default
GITHUB_WAIT_S = 10.0
MAX_DELIVERIES = 100  # bounded: 2 shared cores
SECRET = "bench-secret-" + uuid.uuid4().hex
PUSHED_REF = "refs/heads/main"


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`prefect server start` (SQLite under `home`) on a free port: (API URL, its process)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    args = [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = home / "server.log"
    with background(args, isolated_env(home, None), log, cwd=ROOT) as process:
        wait_http(f"{api_url}/health", process, log, deadline_s=120)
        yield api_url, process


@contextlib.contextmanager
def receiver(
    api_url: str, deployment: str, home: Path, *extra: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`deliverypipeline webhook` for `deployment` on a free port: (webhook URL, its process).

    Its output goes to `home`/webhook-PORT.log.
    """
    port = free_port()
    args = [
        *RECEIVER_COMMAND,
        "webhook",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--deployment",
        deployment,
        "--api-url",
        api_url,
        *extra,
    ]
    env = isolated_env(home, api_url, DELIVERY_WEBHOOK_SECRET=SECRET)
    log = home / f"webhook-{port}.log"
    with background(args, env, log, cwd=ROOT) as process:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, log, deadline_s=60)
        yield f"http://127.0.0.1:{port}/webhooks/github", process


def create_deployment(api_url: str, name: str) -> str:
    """A deployment `deliverypipeline/<name>` (no work pool: runs are only created); its id."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        flow_id = client.create_flow_from_name(FLOW)
        deployment_id = client.create_deployment(
            flow_id, name, entrypoint="flows/pipeline.py:pipeline", parameters={"ref": "HEAD"}
        )
    return str(deployment_id)


def commit_of(n: int, tag: str = "") -> str:
    """A distinct, well-formed 40-hex commit id for delivery `n`."""
    return hashlib.sha1(f"{tag}{n}".encode()).hexdigest()


FIRST_BEFORE = "0" * 39 + "1"


def push_body(commit: str, ref: str = PUSHED_REF, before: str = FIRST_BEFORE) -> bytes:
    """A push payload of `commit` to `ref` over `before`, as GitHub sends it (JSON)."""
    payload = {
        "ref": ref,
        "before": before,
        "after": commit,
        "deleted": False,
        "repository": {"full_name": "example/app", "clone_url": "https://github.com/example/app.git"},
    }
    return json.dumps(payload).encode()


def push_headers(body: bytes, delivery: str, content_type: str = "application/json") -> dict[str, str]:
    """Headers of a correctly signed push delivery."""
    return {
        "Content-Type": content_type,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(SECRET.encode(), body),
    }


@dataclass
class Burst:
    """What N concurrent deliveries got: status (None: no answer), seconds and run id of each."""

    statuses: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    run_ids: list[str | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Deliveries answered 202 with a flow run."""
        return sum(
            1 for status, run in zip(self.statuses, self.run_ids, strict=True) if status == 202 and run
        )

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of the answer times, nearest rank."""
        ordered = sorted(self.seconds)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


async def burst(url: str, deliveries: list[tuple[str, str]], timeout_s: float = 15.0) -> Burst:
    """Send every (delivery id, commit) push at once to the receiver at `url`.

    They are a series of pushes to one branch, each over the previous one (its `before`), as a
    quick series of `git push`es delivers them, but all sent at the same instant.
    """
    commits = [commit for _, commit in deliveries]
    befores = dict(zip(commits, [FIRST_BEFORE, *commits[:-1]], strict=True))
    result = Burst()
    limits = httpx.Limits(max_connections=len(deliveries) + 1, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def one(delivery: str, commit: str) -> tuple[int | None, float, str | None, str | None]:
            body = push_body(commit, before=befores[commit])
            started = time.monotonic()
            try:
                answer = await client.post(url, content=body, headers=push_headers(body, delivery))
            except httpx.HTTPError as exc:
                return None, time.monotonic() - started, None, f"{type(exc).__name__}: {exc}"
            seconds = time.monotonic() - started
            fields = answer.json() if answer.headers.get("content-type") == "application/json" else {}
            error = None if answer.status_code == 202 else f"HTTP {answer.status_code}: {answer.text[:200]}"
            return answer.status_code, seconds, fields.get("flow_run_id"), error

        for status, seconds, run_id, error in await asyncio.gather(*(one(d, c) for d, c in deliveries)):
            result.statuses.append(status)
            result.seconds.append(seconds)
            result.run_ids.append(run_id)
            if error:
                result.errors.append(error)
    return result


async def baseline(api_url: str, deployment_id: str, commits: list[str]) -> Burst:
    """The same burst straight through the Prefect client: one client per delivery, all at once."""
    from prefect.client.orchestration import PrefectClient

    result = Burst()

    async def one(n: int, commit: str) -> tuple[int | None, float, str | None, str | None]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(DEADLINE_S), PrefectClient(api_url) as client:
                run = await client.create_flow_run_from_deployment(
                    uuid.UUID(deployment_id),
                    parameters={"ref": commit, "pushed_ref": PUSHED_REF},
                    tags=["github-push", "branch:main"],
                    idempotency_key=f"baseline:{uuid.uuid4()}:{n}",
                )
        except Exception as exc:
            return 503, time.monotonic() - started, None, f"{type(exc).__name__}: {exc}"[:200]
        return 202, time.monotonic() - started, str(run.id), None

    for status, seconds, run_id, error in await asyncio.gather(*(one(n, c) for n, c in enumerate(commits))):
        result.statuses.append(status)
        result.seconds.append(seconds)
        result.run_ids.append(run_id)
        if error:
            result.errors.append(error)
    return result


def flow_runs(api_url: str, deployment_id: str) -> list[dict[str, Any]]:
    """Every flow run of the deployment, as the API returns them."""
    answer = httpx.post(
        f"{api_url}/flow_runs/filter",
        json={"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 200},
        timeout=10,
    )
    answer.raise_for_status()
    runs: list[dict[str, Any]] = answer.json()
    return runs


def superseded(run: dict[str, Any]) -> bool:
    """Whether the run (as the API returns it) ended Cancelled "superseded by <sha>"."""
    state = run.get("state") or {}
    return state.get("type") == "CANCELLED" and str(state.get("message") or "").startswith("superseded by ")


def wait_superseded(
    api_url: str, deployment_id: str, expected: int, deadline_s: float = 60
) -> list[dict[str, Any]]:
    """Wait until `expected` runs of the deployment are Cancelled "superseded by ..."; all its runs."""
    deadline = time.monotonic() + deadline_s
    while True:
        runs = flow_runs(api_url, deployment_id)
        cancelled = [r for r in runs if superseded(r)]
        if len(cancelled) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def line(name: str, result: Burst, runs: int) -> str:
    """One row of the report."""
    return (
        f"{name:<34} accepted {result.accepted:>3}/{len(result.statuses):<3} "
        f"p50 {result.percentile(50) * 1000:>6.0f} ms  p99 {result.percentile(99) * 1000:>6.0f} ms  "
        f"runs created {runs:>3}"
    )


def measure(api_url: str, work: Path, deliveries: int) -> bool:
    """Run the receiver burst, the redelivery and the baseline against `api_url`; whether targets hold."""
    receiver_deployment = create_deployment(api_url, f"bench-receiver-{os.getpid()}")
    baseline_deployment = create_deployment(api_url, f"bench-baseline-{os.getpid()}")
    tag = uuid.uuid4().hex
    sent = [(str(uuid.uuid4()), commit_of(n, tag)) for n in range(deliveries)]
    with receiver(api_url, f"{FLOW}/bench-receiver-{os.getpid()}", work) as (url, _):
        first = asyncio.run(burst(url, sent))
        again = asyncio.run(burst(url, sent))
        runs = wait_superseded(api_url, receiver_deployment, deliveries - 1)
    base = asyncio.run(baseline(api_url, baseline_deployment, [c for _, c in sent]))
    base_runs = len(flow_runs(api_url, baseline_deployment))

    cancelled = [r for r in runs if superseded(r)]
    waiting = [r for r in runs if r["state_type"] == "SCHEDULED"]
    print(f"{deliveries} concurrent distinct pushes, Prefect server on SQLite at {api_url}")
    print(line("receiver (one client, queued)", first, len(runs)))
    print(line("receiver, same deliveries again", again, len(runs)))
    print(line("baseline (a client per delivery)", base, base_runs))
    print(f"superseded (Cancelled): {len(cancelled)}; still waiting: {len(waiting)}")
    for name, result in (("receiver", first), ("redelivery", again), ("baseline", base)):
        for error in sorted(set(result.errors))[:3]:
            print(f"  {name}: {error}")
    checks = {
        f"all {deliveries} accepted": first.accepted == deliveries,
        f"p99 <= {TARGET_P99_S:g} s": first.percentile(99) <= TARGET_P99_S,
        "one run per delivery": len(runs) == deliveries and len(set(first.run_ids)) == deliveries,
        "redelivery returns the same runs": again.run_ids == first.run_ids,
        f"{deliveries - 1} superseded, the newest waits": len(cancelled) == deliveries - 1
        and len(waiting) == 1,
    }
    for check, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}")
    return all(checks.values())


def main(argv: list[str] | None = None) -> int:
    """Parse the options, start what is missing, measure, print; 0 when every target holds."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--deliveries", type=int, default=20, help="concurrent pushes (default 20, at most 100)"
    )
    parser.add_argument("--api-url", help="an already running Prefect server's API (default: start one)")
    args = parser.parse_args(argv)
    if not 1 <= args.deliveries <= MAX_DELIVERIES:
        parser.error(f"--deliveries must be between 1 and {MAX_DELIVERIES}")
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        work = Path(tmp)
        if args.api_url:
            ok = measure(args.api_url.rstrip("/"), work, args.deliveries)
        else:
            with prefect_server(work / "prefect") as (api_url, _):
                ok = measure(api_url, work, args.deliveries)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
