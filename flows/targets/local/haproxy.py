"""The HAProxy executor: the proxy's host process (start, stop, pid) and its admin socket.

It carries out what `plans` decided and hands `replies` what HAProxy answered; every wait has a
deadline and every failure says what to look at. The process starts with `PROXY_ENVIRONMENT`
only, never the caller's environment. Any proxy of the project (the local target's, a fleet's
edge proxy) is driven through it: it knows files and commands, not environments.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping

from flows.clock import SYSTEM_CLOCK, Clock, poll_until
from flows.command import run_within
from flows.targets.local.errors import ProxyError
from flows.targets.local.plans import PROXY_ENVIRONMENT, ProxyLayout, command_line
from flows.targets.local.replies import (
    ServerSlot,
    ServerState,
    command_errors,
    parse_server_slots,
    parse_servers_state,
)
from flows.targets.local.state import pid_alive
from flows.targets.local.traffic import ServerStat, parse_stat

HAPROXY = "/usr/sbin/haproxy"


def haproxy_installed(binary: str = HAPROXY) -> bool:
    """Whether the HAProxy binary is there and executable."""
    return os.access(binary, os.X_OK)


class HAProxy:
    """A HAProxy host process driven through its pid file and admin socket."""

    def __init__(
        self,
        layout: ProxyLayout,
        binary: str = HAPROXY,
        clock: Clock = SYSTEM_CLOCK,
        environment: Mapping[str, str] = PROXY_ENVIRONMENT,
    ) -> None:
        """`layout` says where its configuration, socket and pid file live; `clock` times the waits;
        `environment` is the process's whole environment."""
        self.layout = layout
        self.binary = binary
        self.clock = clock
        self.environment = dict(environment)

    def pid(self) -> int | None:
        """The running proxy's process id, None when it is not running."""
        try:
            pid = int(self.layout.pid_path.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def ask(self, line: str, timeout: float = 5.0) -> str:
        """Send one line over a fresh admin-socket connection and return the whole reply."""
        path = str(self.layout.socket_path)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(timeout)
                conn.connect(path)
                conn.sendall(line.encode())
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ProxyError(
                f"HAProxy admin socket {path} did not answer ({exc}); "
                "is the proxy running? `deliverypipeline local status` shows it"
            ) from exc
        return b"".join(chunks).decode(errors="replace")

    def running(self) -> bool:
        """Whether the proxy runs and answers on its admin socket."""
        if self.pid() is None:
            return False
        try:
            return "Name: HAProxy" in self.ask("show info\n", timeout=2.0)
        except ProxyError:
            return False

    def send(self, commands: list[str]) -> str:
        """Run runtime commands in order over one connection; raise if HAProxy reports an error."""
        reply = self.ask(command_line(commands))
        errors = command_errors(reply)
        if errors:
            raise ProxyError(f"HAProxy refused {commands}: {'; '.join(errors)}")
        return reply

    def servers(self) -> dict[str, ServerState]:
        """Each backend's `app` server as the running proxy has it now."""
        return parse_servers_state(self.ask("show servers state\n"))

    def slots(self) -> dict[str, ServerSlot]:
        """Every server of every backend with its address, port and weight."""
        return parse_server_slots(self.ask("show servers state\n"))

    def stats(self) -> dict[str, ServerStat]:
        """Every server's cumulative counters (`show stat`)."""
        return parse_stat(self.ask("show stat\n"))

    def start(self, config: str, deadline: float = 10.0) -> None:
        """Write the configuration, check it, start the proxy and wait for its admin socket."""
        path = self.layout.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        check = self._haproxy(
            ["-c", "-q", "-f", str(path)],
            deadline,
            overdue=f"`{self.binary} -c -f {path}` did not finish within {deadline:.0f}s",
        )
        if check.returncode != 0:
            raise ProxyError(f"HAProxy rejects {path}: {check.stderr.strip() or check.stdout.strip()}")
        with contextlib.suppress(FileNotFoundError):
            self.layout.socket_path.unlink()
        started = self._haproxy(
            ["-f", str(path)],
            deadline,
            overdue=(
                f"HAProxy did not daemonize within {deadline:.0f}s with {path}; "
                "check the config's `daemon` setting and the system log"
            ),
            detach=True,
        )
        if started.returncode != 0:
            raise ProxyError(
                f"HAProxy did not start with {path}: {started.stderr.strip()}; "
                "is another process listening on the prod or preprod address?"
            )
        poll_until(
            lambda _: True if self.running() else None,
            deadline,
            0.05,
            lambda waited: ProxyError(
                f"HAProxy started but its admin socket {self.layout.socket_path} never answered "
                f"within {waited.seconds:.0f}s"
            ),
            clock=self.clock,
        )

    def _haproxy(
        self, args: list[str], deadline: float, *, overdue: str, detach: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run HAProxy with `args` (in a session of its own if `detach`); `overdue` if it runs over."""
        return run_within(
            [self.binary, *args],
            deadline,
            ProxyError(overdue),
            start_new_session=detach,
            env=self.environment,
        )

    def stop(self, deadline: float = 10.0) -> bool:
        """Stop the proxy (finishing its requests in flight); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGUSR1)  # soft stop: close listeners, finish open requests
        # a proxy still running at the end of its soft stop is terminated
        poll_until(lambda _: None if pid_alive(pid) else True, deadline, 0.05, clock=self.clock)
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
        for leftover in (self.layout.pid_path, self.layout.socket_path):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return True
