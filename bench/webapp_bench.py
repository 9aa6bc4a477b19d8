"""Webapp benchmark: durable counted calls vs a bare Starlette endpoint, and recovery time.

1. Throughput/latency: a bare Starlette "hello" endpoint and the webapp (durable, default
   LevelDB store in a temp dir) run with the same uvicorn settings, each in its own process on a
   free 127.0.0.1 port, and are loaded from a second process at 32 connections for a bounded time
   (wrk if installed, else a Python asyncio client). Targets: webapp req/s >= 0.8x bare, p99 <= 2x.
2. Recovery: start-up to ready (``/health`` answers) with a journal of 1,000,000 call events and
   a recent snapshot (target < 2 s), the same journal with no snapshot (replay only), and an
   empty store as the baseline.

Run: ``.venv/bin/python bench/webapp_bench.py [--seconds 10] [--connections 32] [--events 1000000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_DEADLINE_S = 60.0


@dataclass
class Load:
    """Result of one load run."""

    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    tool: str


def free_port() -> int:
    """A currently free 127.0.0.1 port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_bare(port: int) -> None:
    """Child process: the bare Starlette hello endpoint with the webapp's uvicorn settings."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from webapp.server import uvicorn_settings

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(app, host="127.0.0.1", port=port, **uvicorn_settings())


def wait_ready(
    port: int, path: str, proc: subprocess.Popen[bytes], deadline_s: float = READY_DEADLINE_S
) -> float:
    """Poll ``path`` until it answers 200; return the seconds waited. Fails if the process exits."""
    started = time.perf_counter()
    while time.perf_counter() - started < deadline_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return time.perf_counter() - started
            conn.close()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"server on port {port} not ready within {deadline_s} s")


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, ready_path: str) -> Iterator[float]:
    """Run a server process until the block ends; yields its start-up-to-ready seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(port, ready_path, proc)
        yield time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def base_env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DELIVERY_CONF",)}
    env.update({"HOST": "127.0.0.1", "PORT": str(port), "PYTHONPATH": str(ROOT)})
    return env


def run_wrk(port: int, seconds: float, connections: int) -> Load:
    """Load with wrk (one thread: the other core is the server's) and parse its report."""
    out = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "5s",
            "-H", "Accept: application/json", f"http://127.0.0.1:{port}/",
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            raise RuntimeError(f"cannot find the {label}% latency in wrk output:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rps is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    secs = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return Load(int(total.group(1)), errors, secs, float(rps.group(1)), latency("50"), latency("99"), "wrk")


async def _python_load(port: int, seconds: float, connections: int) -> Load:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Load(len(latencies), errors, elapsed, len(latencies) / elapsed, pick(0.5), pick(0.99), "python")


def load_child(port: int, seconds: float, connections: int) -> None:
    """Child process for the Python load generator: prints the Load as JSON."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(_python_load(port, seconds, connections)).__dict__))


def load(port: int, seconds: float, connections: int) -> Load:
    """Load ``GET /`` on ``port`` from another process."""
    if shutil.which("wrk"):
        return run_wrk(port, seconds, connections)
    out = subprocess.run(
        [sys.executable, __file__, "--load-child", str(port), str(seconds), str(connections)],
        capture_output=True, text=True, check=True, timeout=seconds + 60, cwd=ROOT,
    ).stdout  # fmt: skip
    return Load(**json.loads(out))


def fsync_latency_ms(directory: Path, samples: int = 200) -> tuple[float, float]:
    """(p50, p99) of write+fsync of a small record in ``directory``: the disk's cost of durability now."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    times = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            os.write(fd, b"x" * 100)
            os.fsync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def combine(runs: list[Load]) -> Load:
    """Totals over rounds: requests/s over the summed time, the median of the rounds' latencies."""
    requests, seconds = sum(r.requests for r in runs), sum(r.seconds for r in runs)
    p50 = sorted(r.p50_ms for r in runs)[len(runs) // 2]
    p99 = sorted(r.p99_ms for r in runs)[len(runs) // 2]
    return Load(requests, sum(r.errors for r in runs), seconds, requests / seconds, p50, p99, runs[0].tool)


def throughput(
    seconds: float, rounds: int, connections: int, data_dirs: dict[str, Path]
) -> tuple[Load, dict[str, Load]]:
    """Run the bare server and one webapp per data directory, and load them in turn, ``rounds``
    times each, so all see the same machine. Returns the bare totals and each webapp's."""
    bare_port = free_port()
    ports = {label: free_port() for label in data_dirs}
    bare_runs: list[Load] = []
    app_runs: dict[str, list[Load]] = {label: [] for label in data_dirs}
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            server(
                [sys.executable, __file__, "--serve-bare", str(bare_port)],
                base_env(bare_port),
                bare_port,
                "/",
            )
        )
        for label, data_dir in data_dirs.items():
            env = base_env(ports[label]) | {"DELIVERY_DATA_DIR": str(data_dir)}
            stack.enter_context(server([sys.executable, "-m", "webapp"], env, ports[label], "/health"))
        for port in (bare_port, *ports.values()):
            load(port, 1, connections)  # warm-up
        for number in range(1, rounds + 1):
            bare_runs.append(load(bare_port, seconds / rounds, connections))
            line = f"  round {number}: bare {bare_runs[-1].rps:6.0f} req/s p99 {bare_runs[-1].p99_ms:6.2f} ms"
            for label, port in ports.items():
                run = load(port, seconds / rounds, connections)
                app_runs[label].append(run)
                ratio = run.rps / bare_runs[-1].rps
                line += f" | {label} {run.rps:6.0f} req/s p99 {run.p99_ms:6.2f} ms ({ratio:.2f})"
            print(line)
        for label, port in ports.items():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Accept": "application/json"})
            calls = json.loads(conn.getresponse().read())["calls"]
            conn.close()
            print(f"  ({label}: the journal holds {calls} durable calls after warm-up + rounds)")
    return combine(bare_runs), {label: combine(runs) for label, runs in app_runs.items()}


def build_journal(path: Path, events: int, snapshot_lag: int) -> None:
    """A LevelDB journal of ``events`` call events (+1 start); snapshot ``snapshot_lag`` events back."""
    from webapp.state import (
        CALLS,
        STARTS,
        CallCounted,
        State,
        VersionStarted,
        apply,
        encode_event,
        encode_snapshot,
    )
    from webapp.stores.leveldb import LevelDBStore

    store = LevelDBStore(path)
    start = VersionStarted(version="bench", at="2026-01-01T00:00:00Z", host="bench")
    store.append(STARTS, [encode_event(start)])
    state = apply(State(), 1, start)
    chunk = 20_000
    for first in range(0, events, chunk):
        payload = encode_event(CallCounted(at=time.time(), host="bench", version="bench"))
        size = min(chunk, events - first)
        store.append(CALLS, [payload] * size)
    if snapshot_lag >= 0:
        snap = State(calls=events - snapshot_lag, starts=state.starts, history=state.history)
        store.save_snapshot(encode_snapshot(snap))
    store.close()


def drop_snapshot(path: Path) -> None:
    import plyvel

    from webapp.stores.leveldb import SNAPSHOT_KEY

    db = plyvel.DB(str(path))
    db.delete(SNAPSHOT_KEY, sync=True)
    db.close()


def startup(data_dir: Path) -> float:
    """Seconds from launching ``python -m webapp`` on ``data_dir`` to ``/health`` answering."""
    port = free_port()
    env = base_env(port) | {"DELIVERY_DATA_DIR": str(data_dir)}
    with server([sys.executable, "-m", "webapp"], env, port, "/health") as seconds:
        return seconds


def recovery(events: int, tmp: Path) -> tuple[float, float, float]:
    """(empty store, 1M events + recent snapshot, 1M events replay-only) start-up-to-ready seconds."""
    empty = startup(tmp / "empty")
    data = tmp / "recovery"
    build_journal(data / "leveldb", events, snapshot_lag=500)
    with_snapshot = startup(data)
    drop_snapshot(data / "leveldb")
    replay_only = startup(data)
    return empty, with_snapshot, replay_only


def report_throughput(seconds: float, rounds: int, connections: int, tmp: Path, tmpfs: Path | None) -> None:
    """Measure and print throughput and latency against the targets.

    The target is for the webapp journaling to the disk. With ``tmpfs`` a second webapp journals
    to memory (fsync costs nothing there): its ratio isolates the software's own overhead.
    """
    print(
        f"throughput: {connections} connections, {seconds:g} s per server in {rounds} "
        "alternating rounds, GET / (Accept: application/json)"
    )
    data_dirs = {"webapp": tmp / "throughput"}
    if tmpfs is not None:
        data_dirs["webapp-tmpfs"] = tmpfs
    bare, apps = throughput(seconds, rounds, connections, data_dirs)
    print("  totals (req/s over all rounds; latency: median of the rounds):")
    rows = [("bare Starlette hello", bare), ("webapp, journal on disk", apps["webapp"])]
    if "webapp-tmpfs" in apps:
        rows.append(("webapp, journal on tmpfs", apps["webapp-tmpfs"]))
    for label, res in rows:
        print(
            f"  {label:25s} {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms"
            f"  ({res.requests} requests, {res.errors} errors, {res.tool})"
        )
    durable = apps["webapp"]
    ratio, p99_ratio = durable.rps / bare.rps, durable.p99_ms / bare.p99_ms
    print(f"  disk:  req/s ratio {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'MISSED'})")
    print(f"  disk:  p99 ratio   {p99_ratio:.2f} (target <= 2.00: {'met' if p99_ratio <= 2 else 'MISSED'})")
    if "webapp-tmpfs" in apps:
        memory = apps["webapp-tmpfs"]
        print(
            f"  tmpfs: req/s ratio {memory.rps / bare.rps:.2f}, p99 ratio {memory.p99_ms / bare.p99_ms:.2f} "
            "(software overhead alone; not the target)"
        )


def report_recovery(events: int, tmp: Path) -> None:
    """Measure and print start-up-to-ready times against the target."""
    print(f"recovery: start-up to ready (/health answers), journal of {events} call events")
    empty, snap, replay = recovery(events, tmp)
    print(f"  empty store (baseline)          {empty:6.2f} s")
    verdict = "met" if snap < 2 else "MISSED"
    print(f"  with a snapshot 500 events back {snap:6.2f} s (target < 2 s: {verdict})")
    print(f"  replay only (no snapshot)       {replay:6.2f} s")


def main() -> int:
    """Run both measurements and print the figures against the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=["throughput", "recovery"], help="run one of the two measurements")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--no-tmpfs", dest="tmpfs", action="store_false", help="skip the extra webapp journaling to /dev/shm"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    if args.load_child:
        port, seconds, connections = args.load_child
        load_child(int(port), float(seconds), int(connections))
        return 0

    with tempfile.TemporaryDirectory(prefix=f"webapp-bench-{os.getpid()}-") as name:
        tmp = Path(name)
        p50, p99 = fsync_latency_ms(tmp)
        print(f"disk: write+fsync p50 {p50:.2f} ms, p99 {p99:.2f} ms (other load on this machine shows here)")
        if args.only in (None, "throughput"):
            shm = Path("/dev/shm")
            with contextlib.ExitStack() as stack:
                tmpfs = None
                if args.tmpfs and shm.is_dir():
                    tmpfs = Path(
                        stack.enter_context(tempfile.TemporaryDirectory(prefix="webapp-bench-", dir=shm))
                    )
                report_throughput(args.seconds, args.rounds, args.connections, tmp, tmpfs)
        if args.only in (None, "recovery"):
            report_recovery(args.events, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
