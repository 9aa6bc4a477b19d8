"""Store benchmark: counted calls on PostgreSQL against LevelDB, and two processes on one database.

1. Throughput/latency: a bare Starlette endpoint, the webapp on LevelDB (the default, a temp dir)
   and the webapp on PostgreSQL (a throwaway cluster from flows.servers.postgres on the same disk,
   synchronous commits), same uvicorn settings, each in its own process, loaded in alternating
   rounds at 32 connections (wrk). Targets: PostgreSQL >= 0.7x LevelDB's req/s and p99 <= 2x;
   LevelDB >= 0.9x bare Starlette.
2. Blue and green: two webapp processes on one PostgreSQL database loaded at once (half the
   connections each) by a client that reads every number shown. Target: the counter is exact,
   the highest number equals the calls made and no number is shown twice.

Run: ``.venv/bin/python -m bench.store_bench [--seconds 10] [--rounds 5] [--connections 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.webapp_bench import ROOT, Load, base_env, combine, free_port, fsync_latency_ms, load, server
from flows.servers import postgres
from flows.servers.postgres import Cluster, ClusterSpec

PASSWORD_ENV = "DELIVERY_DB_PASSWORD"


def postgres_env(cluster: Cluster, database: str, port: int, tmp: Path) -> dict[str, str]:
    """The environment of a webapp on ``database``: a DELIVERY_CONF file, the password in a variable."""
    url = cluster.create_database(database).replace(f":{cluster.spec.password}@", "@")
    conf = tmp / f"{database}.toml"
    conf.write_text(f'[store]\nkind = "postgresql"\nuri = "{url}"\npassword_env = "{PASSWORD_ENV}"\n')
    return base_env(port) | {"DELIVERY_CONF": str(conf), PASSWORD_ENV: cluster.spec.password}


def throughput(cluster: Cluster, tmp: Path, seconds: float, rounds: int, connections: int) -> dict[str, Load]:
    """Bare, LevelDB and PostgreSQL loaded in turn, ``rounds`` times each; the totals of each."""
    ports = {"bare": free_port(), "leveldb": free_port(), "postgresql": free_port()}
    runs: dict[str, list[Load]] = {label: [] for label in ports}
    webapp = [sys.executable, "-m", "webapp"]
    with contextlib.ExitStack() as stack:
        bare = [sys.executable, str(ROOT / "bench" / "webapp_bench.py"), "--serve-bare", str(ports["bare"])]
        stack.enter_context(server(bare, base_env(ports["bare"]), ports["bare"], "/"))
        leveldb_env = base_env(ports["leveldb"]) | {"DELIVERY_DATA_DIR": str(tmp / "leveldb")}
        stack.enter_context(server(webapp, leveldb_env, ports["leveldb"], "/health"))
        pg_env = postgres_env(cluster, "throughput", ports["postgresql"], tmp)
        stack.enter_context(server(webapp, pg_env, ports["postgresql"], "/health"))
        for port in ports.values():
            load(port, 1, connections)  # warm-up
        for number in range(1, rounds + 1):
            line = f"  round {number}:"
            for label, port in ports.items():
                runs[label].append(load(port, seconds / rounds, connections))
                line += f" {label} {runs[label][-1].rps:6.0f} req/s p99 {runs[label][-1].p99_ms:6.2f} ms |"
            print(line.rstrip(" |"))
    return {label: combine(done) for label, done in runs.items()}


async def _counting_client(port: int, stop_at: float, numbers: list[int], refused: list[int]) -> None:
    """One keep-alive connection calling ``GET /`` until ``stop_at``, keeping every number shown."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n".encode()
    while time.perf_counter() < stop_at:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.I)
        body = await reader.readexactly(int(length.group(1)) if length else 0)
        if head.startswith(b"HTTP/1.1 200"):
            numbers.append(int(json.loads(body)["calls"]))
        else:
            refused.append(1)
    writer.close()


async def _blue_green_load(ports: tuple[int, int], seconds: float, connections: int) -> tuple[list[int], int]:
    numbers: list[int] = []
    refused: list[int] = []
    stop_at = time.perf_counter() + seconds
    await asyncio.gather(
        *(_counting_client(ports[i % 2], stop_at, numbers, refused) for i in range(connections))
    )
    return numbers, len(refused)


def blue_green(cluster: Cluster, tmp: Path, seconds: float, connections: int) -> None:
    """Two processes on one fresh database under load at once: is the counter exact?"""
    ports = (free_port(), free_port())
    webapp = [sys.executable, "-m", "webapp"]
    with contextlib.ExitStack() as stack:
        for port in ports:
            stack.enter_context(
                server(webapp, postgres_env(cluster, "bluegreen", port, tmp), port, "/health")
            )
        started = time.perf_counter()
        numbers, refused = asyncio.run(_blue_green_load(ports, seconds, connections))
        elapsed = time.perf_counter() - started
    exact = len(set(numbers)) == len(numbers) and max(numbers, default=0) == len(numbers)
    print(
        f"blue/green: 2 processes on one database, {connections} connections for {seconds:g} s: "
        f"{len(numbers)} calls made ({len(numbers) / elapsed:.0f} req/s, Python client), {refused} refused, "
        f"highest number {max(numbers, default=0)}, {len(numbers) - len(set(numbers))} shown twice "
        f"-> counter {'exact' if exact and not refused else 'NOT EXACT'}"
    )


def report(results: dict[str, Load]) -> None:
    """The totals and the ratios against the targets."""
    print("  totals (req/s over all rounds; latency: median of the rounds):")
    for label, res in results.items():
        print(
            f"  {label:11s} {res.rps:8.0f} req/s  p50 {res.p50_ms:6.2f} ms  p99 {res.p99_ms:6.2f} ms"
            f"  ({res.requests} requests, {res.errors} errors, {res.tool})"
        )
    pg, ldb, bare = results["postgresql"], results["leveldb"], results["bare"]
    checks = [
        ("postgresql/leveldb req/s", pg.rps / ldb.rps, ">=", 0.7),
        ("postgresql/leveldb p99  ", pg.p99_ms / ldb.p99_ms, "<=", 2.0),
        ("leveldb/bare req/s      ", ldb.rps / bare.rps, ">=", 0.9),
    ]
    for label, value, sense, target in checks:
        met = value >= target if sense == ">=" else value <= target
        print(f"  {label} {value:5.2f} (target {sense} {target:.2f}: {'met' if met else 'MISSED'})")


def main() -> int:
    """Start a throwaway PostgreSQL, run both measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", choices=["throughput", "bluegreen"], help="run one of the two measurements")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="store-bench-pg-"))  # /tmp: traversable by the postgres user
    try:
        with tempfile.TemporaryDirectory(prefix="store-bench-") as name:
            tmp = Path(name)
            p50, p99 = fsync_latency_ms(tmp)
            print(f"disk: write+fsync p50 {p50:.2f} ms, p99 {p99:.2f} ms (other load shows here)")
            with postgres.start(ClusterSpec(directory, free_port(), secrets.token_urlsafe(12))) as cluster:
                if args.only in (None, "throughput"):
                    print(
                        f"throughput: {args.connections} connections, {args.seconds:g} s per server in "
                        f"{args.rounds} alternating rounds, GET / (Accept: application/json)"
                    )
                    report(throughput(cluster, tmp, args.seconds, args.rounds, args.connections))
                if args.only in (None, "bluegreen"):
                    blue_green(cluster, tmp, args.seconds, args.connections)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
