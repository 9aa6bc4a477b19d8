"""The one place the swarm lab does I/O: it carries out the steps of `lab_plans`, in order.

`up` records every pid it starts in the lab's record file as soon as the process runs, so a
`down` after a failed or interrupted `up` still stops exactly what was started (by pid, never by
name), and `up` itself tears down what it did when a step fails. A pid is signalled only while
its command line still names the binary it was started as (a recycled pid is left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flows.clock import SYSTEM_CLOCK, Clock, Deadline, poll_until
from flows.errors import TargetError
from flows.targets.local.state import pid_alive
from flows.targets.swarm import lab_steps
from flows.targets.swarm.engine import API_VERSION
from flows.targets.swarm.lab_plans import LabLayout, LabRecord, down_plan, up_plan

Say = Callable[[str], None]
ENGINE_START_S = 60.0
STOP_GRACE_S = 30.0  # an engine stops its containers before exiting


class LabError(TargetError):
    """The local swarm lab could not be brought up or down; the message says what to look at."""


def record_file(layout: LabLayout) -> Path:
    """Where `swarm up` records what it started (pids), for `swarm down`: beside the sockets."""
    return layout.run_dir / "lab.json"


def read_record(path: Path) -> LabRecord | None:
    """The lab's record (what `up` started), None when there is none."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise LabError(f"{path} is not a lab record ({exc}); remove it and the lab by hand") from exc
    layout = data["layout"]
    layout["run_dir"], layout["state_dir"] = Path(layout["run_dir"]), Path(layout["state_dir"])
    layout["registry_storage"] = Path(layout["registry_storage"])
    return LabRecord(LabLayout(**layout), {str(k): int(v) for k, v in data["pids"].items()})


def write_record(record: LabRecord) -> None:
    """Store the record atomically (a crash leaves the old or the new one)."""
    path = record_file(record.layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"layout": asdict(record.layout), "pids": record.pids}, default=str, indent=2))
    os.replace(tmp, path)


def write_files(files: lab_steps.Files) -> None:
    """Write each (path, text), making its directory."""
    for path, text in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def process_named(pid: int, binary: str) -> bool:
    """Whether process `pid` runs and its command line names `binary` (so it is still ours)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(os.path.basename(arg.decode(errors="replace")) == binary for arg in argv[:1])


def accepts(path: Path) -> bool:
    """Whether a Unix socket at `path` accepts a connection now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def mounts_under(root: Path) -> list[Path]:
    """Mount points under `root`, deepest first (from /proc/self/mounts)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = Path(line.split()[1].replace("\\040", " "))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


class LabExecutor:
    """Carries out lab steps; `docker` makes an SDK client for a socket (tests pass a fake)."""

    def __init__(
        self,
        say: Say = print,
        clock: Clock = SYSTEM_CLOCK,
        docker: Callable[[Path], Any] | None = None,
    ) -> None:
        """`say` gets one line per step done."""
        self.say = say
        self.clock = clock
        self._docker = docker or _sdk_client
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # started here: reaped when stopped

    def up(self, layout: LabLayout) -> LabRecord:
        """Bring the lab up; on a failed step, take down what was done and raise `LabError`."""
        existing = read_record(record_file(layout))
        if existing is not None:
            alive = [name for name, pid in existing.pids.items() if pid_alive(pid)]
            if alive:
                raise LabError(
                    f"a swarm lab is already up ({', '.join(sorted(alive))} running, record "
                    f"{record_file(layout)}); run `deliverypipeline swarm down` first"
                )
            self.run(down_plan(existing), LabRecord(existing.layout, {}))
        record = LabRecord(layout, {})
        write_record(record)
        try:
            self.run(up_plan(layout, secrets.token_urlsafe(18)), record)
        except BaseException:
            self.say("swarm up failed: taking down what it started")
            self.run(down_plan(record), record)
            raise
        return record

    def down(self, layout: LabLayout) -> list[str]:
        """Take the recorded lab down; what was removed, one line each (empty: no lab)."""
        record = read_record(record_file(layout))
        if record is None:
            return []
        done: list[str] = []
        self.run(down_plan(record), record, done)
        return done

    def run(self, steps: Sequence[lab_steps.Step], record: LabRecord, done: list[str] | None = None) -> None:
        """Each step in order; a failing checked step raises `LabError` naming it."""
        for step in steps:
            line = self.step(step, record)
            if line:
                self.say(line)
                if done is not None:
                    done.append(line)

    def step(self, step: lab_steps.Step, record: LabRecord) -> str | None:
        """Carry out one step; the line to report, or None for a silent one."""
        if isinstance(step, lab_steps.Command):
            return self._command(step)
        if isinstance(step, lab_steps.Spawn):
            return self._spawn(step, record)
        if isinstance(step, lab_steps.StartPostgres):
            return self._postgres(step, record)
        if isinstance(step, lab_steps.Swarm):
            return self._swarm(step.node, step.manager)
        if isinstance(step, lab_steps.Kill):
            return self._kill(step)
        if isinstance(step, lab_steps.Remove):
            for point in mounts_under(step.path) if step.path.exists() else []:
                subprocess.run(["umount", "--lazy", str(point)], check=False, capture_output=True)
            if step.path.is_dir():
                shutil.rmtree(step.path, ignore_errors=True)
            elif step.path.exists():
                step.path.unlink()
            return None
        raise LabError(f"unknown lab step {step!r}")

    def _command(self, step: lab_steps.Command) -> str | None:
        try:
            result = subprocess.run(list(step.argv), capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            if step.check:
                raise LabError(f"`{' '.join(step.argv)}` could not run: {exc}") from exc
            return None
        if result.returncode != 0 and step.check:
            raise LabError(
                f"`{' '.join(step.argv)}` failed ({result.returncode}): {result.stderr.strip()}; "
                "the lab needs root, iproute2, iptables and the host engine's DOCKER-USER chain"
            )
        return None

    def _spawn(self, step: lab_steps.Spawn, record: LabRecord) -> str:
        write_files(step.files)
        step.log.parent.mkdir(parents=True, exist_ok=True)
        with step.log.open("ab") as log:
            try:
                process = subprocess.Popen(
                    list(step.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LabError(f"{step.name}: `{step.argv[0]}` could not start: {exc}") from exc
        self._children[process.pid] = process
        record.pids[step.name] = process.pid
        write_record(record)
        return f"{step.name}: started (pid {process.pid}, log {step.log})"

    def _postgres(self, step: lab_steps.StartPostgres, record: LabRecord) -> str:
        from flows.servers import postgres

        try:
            cluster = postgres.start(step.cluster)
            cluster.create_database(step.database)
        except postgres.PostgresError as exc:
            raise LabError(f"the store's PostgreSQL: {exc}") from exc
        self._children[cluster.pid] = cluster.process
        record.pids["postgres"] = cluster.pid
        write_record(record)
        write_files(step.files)
        return f"postgres: {cluster.describe()} (pid {cluster.pid}), database {step.database} for the tasks"

    def _swarm(self, node: lab_steps.LabNode, manager: lab_steps.LabNode | None) -> str:
        """Wait for the node's engine, then init a swarm on it or join it to the manager's."""
        self._wait_engine(node)
        if manager is None:
            with contextlib.closing(self._docker(node.socket)) as engine:
                engine.swarm.init(advertise_addr=node.address, listen_addr=f"{node.address}:2377")
            return f"{node.name}: engine answers, swarm initialised, manager on {node.address}:2377"
        with contextlib.closing(self._docker(manager.socket)) as engine:
            engine.swarm.reload()
            token = engine.swarm.attrs["JoinTokens"]["Worker"]
        with contextlib.closing(self._docker(node.socket)) as engine:
            engine.swarm.join(
                remote_addrs=[f"{manager.address}:2377"],
                join_token=token,
                advertise_addr=node.address,
                listen_addr=f"{node.address}:2377",
            )
        return f"{node.name}: engine answers, joined the swarm as a worker"

    def _wait_engine(self, node: lab_steps.LabNode) -> None:
        def look(_: Deadline) -> bool | None:
            if not accepts(node.socket):  # the SDK leaks its socket when a connect fails
                return None
            try:
                with contextlib.closing(self._docker(node.socket)) as engine:
                    engine.ping()
            except Exception:  # not up yet: the SDK raises several types
                return None
            return True

        def too_late(deadline: Deadline) -> LabError:
            return LabError(
                f"{node.name}: the engine did not answer on {node.socket} within {deadline.seconds:g} s; "
                f"see its log dockerd.log beside its data root"
            )

        poll_until(look, ENGINE_START_S, 0.5, too_late, clock=self.clock)

    def _kill(self, step: lab_steps.Kill) -> str | None:
        child = self._children.pop(step.pid, None)
        try:
            return self._stop(step)
        finally:
            if child is not None:
                child.wait()

    def _stop(self, step: lab_steps.Kill) -> str | None:
        if not process_named(step.pid, step.binary):
            return None
        os.kill(step.pid, step.signal)

        def gone(_: Deadline) -> bool | None:
            return True if not process_named(step.pid, step.binary) else None

        if poll_until(gone, STOP_GRACE_S, 0.2, clock=self.clock) is not True:
            with contextlib.suppress(ProcessLookupError):
                os.kill(step.pid, signal.SIGKILL)
            return f"{step.name}: killed (pid {step.pid}, did not stop within {STOP_GRACE_S:g} s)"
        return f"{step.name}: stopped (pid {step.pid})"


def _sdk_client(socket: Path) -> Any:
    import docker

    # a fixed API version: "auto" asks the engine in the constructor, which leaks a socket if it is not up yet
    return docker.DockerClient(base_url=f"unix://{socket}", version=API_VERSION, timeout=30)
