"""A PostgreSQL cluster of our own: initdb in a directory, the server on host:port, databases, URLs.

The tests start one for the webapp's ``postgresql`` store, the benchmark measures against one, and
a multi-host target starts one its nodes reach: the cluster listens on the address it is given and
accepts password (SCRAM) connections from the networks it is told to trust, besides loopback.
It uses Debian's server binaries (``apt-get install postgresql``, done by scripts/setup-host.sh).

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user
(created by Debian's package) and its directory is handed to that user. The server is this
module's child, stopped by its pid (SIGINT: PostgreSQL's fast shutdown) or killed (SIGKILL, for
crash tests). Commands and configuration text are built by pure functions; `start` runs them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from flows.clock import Deadline, poll_until
from flows.errors import DeliveryError

SUPERUSER = "deliverypipeline"
RUN_AS = "postgres"  # the system user the server runs as when we are root
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
POLL_S = 0.1
BIN_DIRS = ("/usr/lib/postgresql",)  # Debian: /usr/lib/postgresql/<major>/bin
# what a server that is still starting answers (anything else, e.g. a pg_hba.conf refusal, is final)
STARTING = ("Connection refused", "starting up", "not yet accepting", "shutting down", "timeout expired")


class PostgresError(DeliveryError):
    """The cluster could not be created, started or used; the message says what to check."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where a cluster lives and who may connect.

    ``host`` is the listen address (``127.0.0.1``, a bridge address, or ``*`` for all);
    ``allow_from`` lists extra networks (CIDR) allowed to connect with the password.
    """

    directory: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    allow_from: tuple[str, ...] = ()
    user: str = SUPERUSER

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.directory / "postgres.log"


def find_bindir(roots: Sequence[str] = BIN_DIRS) -> Path:
    """The newest installed server's bin directory (with ``initdb`` and ``postgres``)."""
    found: list[tuple[int, Path]] = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for child in base.iterdir():
            if child.name.isdigit() and (child / "bin" / "initdb").is_file():
                found.append((int(child.name), child / "bin"))
    if not found:
        initdb = shutil.which("initdb")
        if initdb:
            return Path(initdb).resolve().parent
        raise PostgresError(
            "PostgreSQL server binaries (initdb, postgres) not found under "
            f"{', '.join(roots)}; install Debian's postgresql package (scripts/setup-host.sh does)"
        )
    return max(found)[1]


def initdb_command(bindir: Path, spec: ClusterSpec, password_file: Path) -> list[str]:
    """``initdb`` for a UTF-8 cluster whose superuser ``spec.user`` signs in with a SCRAM password."""
    return [
        str(bindir / "initdb"),
        "--pgdata",
        str(spec.data_dir),
        "--username",
        spec.user,
        "--pwfile",
        str(password_file),
        "--auth-local=scram-sha-256",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",  # the files reach the disk with the page cache; only a host crash right now loses them
    ]


def server_settings(spec: ClusterSpec) -> str:
    """Lines appended to postgresql.conf: the address, no Unix socket, commits synced to disk."""
    return (
        "\n# deliverypipeline\n"
        f"listen_addresses = '{spec.host}'\n"
        f"port = {spec.port}\n"
        "unix_socket_directories = ''\n"
        "fsync = on\n"
        "synchronous_commit = on\n"
        "max_connections = 200\n"
        "password_encryption = 'scram-sha-256'\n"
    )


def hba_text(spec: ClusterSpec) -> str:
    """pg_hba.conf: password (SCRAM) sign-in over loopback and from each network of ``allow_from``."""
    networks = ("127.0.0.1/32", "::1/128", *spec.allow_from)
    lines = ["# TYPE  DATABASE  USER  ADDRESS  METHOD"]
    lines += [f"host all all {network} scram-sha-256" for network in networks]
    return "\n".join(lines) + "\n"


def server_command(bindir: Path, spec: ClusterSpec) -> list[str]:
    """The server in the foreground (this module's child, so it is stopped by its pid)."""
    return [str(bindir / "postgres"), "-D", str(spec.data_dir)]


def url(spec: ClusterSpec, database: str = "postgres", host: str | None = None) -> str:
    """A ``postgresql://`` URL for ``database`` with the superuser and password (``host`` for others)."""
    address = host or ("127.0.0.1" if spec.host in ("*", "0.0.0.0", "") else spec.host)
    if ":" in address:
        address = f"[{address}]"
    user = urllib.parse.quote(spec.user, safe="")
    password = urllib.parse.quote(spec.password, safe="")
    return f"postgresql://{user}:{password}@{address}:{spec.port}/{urllib.parse.quote(database)}"


def _as_owner() -> dict[str, Any]:
    """subprocess keywords that run a command as the cluster's owner (the ``postgres`` user when root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError as exc:
        raise PostgresError(
            f"running as root and there is no {RUN_AS!r} user for the server; install Debian's "
            "postgresql package (it creates the user) or run as another user"
        ) from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def children(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (from /proc/<id>/stat)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def _hand_over(path: Path, owner: dict[str, Any]) -> None:
    if owner:
        os.chown(path, owner["user"], owner["group"])


class Cluster:
    """A running server started by `start`: its URLs, databases, and stop/kill by pid."""

    def __init__(self, spec: ClusterSpec, bindir: Path, process: subprocess.Popen[bytes]) -> None:
        """Wrap the server process ``process`` (already accepting connections)."""
        self.spec = spec
        self.bindir = bindir
        self.process = process

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self.process.pid

    def url(self, database: str = "postgres", host: str | None = None) -> str:
        """A connection URL for ``database`` (see the module function `url`)."""
        return url(self.spec, database, host)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (if missing) and return its URL."""
        try:
            with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise PostgresError(f"cannot create database {name} on {self.describe()}: {exc}") from exc
        return self.url(name)

    def describe(self) -> str:
        """``PostgreSQL on host:port (directory)`` for messages."""
        return f"PostgreSQL on {self.spec.host}:{self.spec.port} ({self.spec.directory})"

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions end, committed data is kept); SIGKILL after a deadline."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server and all its processes at once, as a crash of the host's server would.

        Each backend runs in a process group of its own (PostgreSQL calls setsid), so they are
        found by their parent and killed with the postmaster.
        """
        if self.process.poll() is None:
            for pid in (*children(self.process.pid), self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait(STOP_DEADLINE_S)

    def __enter__(self) -> Cluster:
        """Use as ``with start(spec) as cluster:``; stops the server on leaving."""
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop the server."""
        self.stop()


def initialise(spec: ClusterSpec, bindir: Path) -> None:
    """Create the cluster in ``spec.directory`` unless it exists; (re)write its address and access rules."""
    owner = _as_owner()
    spec.directory.mkdir(parents=True, exist_ok=True)
    _hand_over(spec.directory, owner)
    if not (spec.data_dir / "PG_VERSION").is_file():
        password_file = spec.directory / "initdb-password"
        password_file.write_text(spec.password + "\n", encoding="utf-8")
        _hand_over(password_file, owner)
        try:
            done = subprocess.run(
                initdb_command(bindir, spec, password_file),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                **owner,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PostgresError(
                f"initdb in {spec.data_dir} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        conf = spec.data_dir / "postgresql.conf"
        conf.write_text(conf.read_text(encoding="utf-8") + server_settings(spec), encoding="utf-8")
    else:
        conf = spec.data_dir / "postgresql.auto.conf"  # a restart on another address or port
        conf.write_text(server_settings(spec), encoding="utf-8")
        _hand_over(conf, owner)
    hba = spec.data_dir / "pg_hba.conf"
    hba.write_text(hba_text(spec), encoding="utf-8")
    _hand_over(hba, owner)


def _ready(spec: ClusterSpec, process: subprocess.Popen[bytes]) -> bool | None:
    if process.poll() is not None:
        tail = spec.log_file.read_text(encoding="utf-8", errors="replace")[-800:]
        raise PostgresError(
            f"PostgreSQL in {spec.data_dir} exited at start (code {process.returncode}); "
            f"its log {spec.log_file} ends:\n{tail}"
        )
    try:
        with psycopg.connect(url(spec), connect_timeout=2):
            return True
    except psycopg.OperationalError as exc:
        if any(sign in str(exc) for sign in STARTING):
            return None
        raise PostgresError(
            f"PostgreSQL on {spec.host}:{spec.port} runs but refuses this host's connection ({exc}); "
            f"check ClusterSpec.host and allow_from (pg_hba.conf in {spec.data_dir})"
        ) from exc


def start(spec: ClusterSpec, bindir: Path | None = None) -> Cluster:
    """Initialise the cluster if needed, start its server and wait until it accepts connections."""
    bindir = bindir or find_bindir()
    initialise(spec, bindir)
    owner = _as_owner()
    with spec.log_file.open("ab") as log:
        _hand_over(spec.log_file, owner)
        process = subprocess.Popen(
            server_command(bindir, spec),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it
            **owner,
        )

    def timed_out(deadline: Deadline) -> PostgresError:
        process.kill()
        process.wait(STOP_DEADLINE_S)
        return PostgresError(
            f"PostgreSQL on {spec.host}:{spec.port} did not accept connections within "
            f"{deadline.seconds:.0f} s; see {spec.log_file}"
        )

    try:
        poll_until(lambda _d: _ready(spec, process), START_DEADLINE_S, POLL_S, timed_out)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_DEADLINE_S)
        raise
    return Cluster(spec, bindir, process)
