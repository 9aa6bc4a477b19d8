"""Where the control plane lives: state dir, Prefect home, port, URLs, and its children's environment.

Everything comes from the environment: `DELIVERY_STATE_DIR` (default: the machine's, see
`machine_state_dir`), `PREFECT_PORT` (default 4200) and `PREFECT_API_URL` (unset or pointing at
127.0.0.1:PREFECT_PORT: the local server, started when missing; anything else: that server, never
started by us).

The control plane belongs to the machine, not to a checkout: its database, logs and process
records live in one state dir shared by every checkout (like the local target's
`/var/lib/deliverypipeline/local`), so deleting a checkout loses no history and any checkout's
`make demo` shows the same runs.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flows.controlplane.secrets import without_caller_credentials
from flows.errors import ConfigError

STATE_DIR_ENV = "DELIVERY_STATE_DIR"
PORT_ENV = "PREFECT_PORT"
DEFAULT_PORT = 4200
HOST = "127.0.0.1"
POOL = "deliverypipeline"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# How often our worker asks for runs (Prefect's default, 10 s, could delay a run's start by that).
WORKER_QUERY_S = "0.5"
# How often a flow run ships its logs (Prefect's default: 2 s): `make demo` streams them, and
# its end waits for the run's last lines.
LOG_BATCH_S = "0.5"
# How often a flow run tells the server it is alive (Prefect's minimum; its default is 180 s): the
# server's automation marks a run Crashed when these stop (see `automations`).
HEARTBEAT_S = "30"
MACHINE_STATE_DIR = Path("/var/lib/deliverypipeline/controlplane")


def checkout_root(cwd: Path | None = None) -> Path:
    """The checkout whose prefect.yaml is deployed: the working directory if it holds one, else ours."""
    here = (cwd or Path.cwd()).resolve()
    if (here / "prefect.yaml").is_file():
        return here
    return Path(__file__).resolve().parents[2]


def machine_state_dir(environ: Mapping[str, str], system: Path = MACHINE_STATE_DIR) -> Path:
    """The machine-wide state dir: `system` (/var/lib/...) when it exists or can be made there,
    else the user's (`$XDG_STATE_HOME` or `~/.local/state`, then `deliverypipeline/controlplane`)."""
    if _writable(system):
        return system
    base = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "deliverypipeline" / "controlplane"


def for_server(state_dir: Path, port: int, external_api: str | None = None) -> Path:
    """One state dir per server on a machine: the local one on another port has its own
    (`controlplane-4300`, never the database of the one on 4200), and so has each team server
    (`controlplane-team.example_4200`: its worker's record and logs)."""
    if external_api:
        parts = urlsplit(external_api)
        port_part = parts.netloc.rsplit(":", 1)[-1] if ":" in parts.netloc else parts.scheme
        where = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{parts.hostname}_{port_part}")
        return state_dir.with_name(f"{state_dir.name}-{where}")
    return state_dir if port == DEFAULT_PORT else state_dir.with_name(f"{state_dir.name}-{port}")


def _writable(directory: Path) -> bool:
    """Whether `directory` is (or can be created as) a directory this user may write into."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def parse_port(value: str | None) -> int:
    """`PREFECT_PORT` as a port number; a bad value is a ConfigError saying what is allowed."""
    if value is None or value == "":
        return DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"{PORT_ENV}={value!r} is not a port number: set it to 1..65535 (default 4200)")
    return port


def is_local_api(api_url: str, port: int) -> bool:
    """Whether `api_url` names the local control plane's server (127.0.0.1 or localhost on `port`)."""
    parts = urlsplit(api_url)
    try:
        url_port = parts.port
    except ValueError:
        return False
    return parts.hostname in LOCAL_HOSTS and url_port == port


class BelowStateDir:
    """A read-only `Layout` attribute naming a path below the layout's state dir."""

    def __init__(self, *parts: str) -> None:
        """`parts`: the path's parts below the state dir."""
        self.parts = parts

    def __get__(self, layout: Layout, owner: type[Layout] | None = None) -> Path:
        """The path below `layout.state_dir`."""
        return layout.state_dir.joinpath(*self.parts)


@dataclass(frozen=True)
class Layout:
    """One control plane's places and addresses."""

    root: Path  # the checkout deployed (prefect.yaml, flows/pipeline.py)
    state_dir: Path
    port: int
    api_url: str
    external: bool  # PREFECT_API_URL names a server we neither start nor stop
    ui_url: str

    # PREFECT_HOME of the server, the worker and the clients.
    home = BelowStateDir("prefect")
    # Where the server and the worker write their output.
    logs = BelowStateDir("logs")
    # Where the pids of the server and the worker we started are recorded.
    records = BelowStateDir("controlplane")
    # The server's SQLite database, in PREFECT_HOME.
    database = BelowStateDir("prefect", "prefect.db")

    def run_url(self, run_id: object) -> str:
        """The UI address of one flow run."""
        return f"{self.ui_url}/runs/flow-run/{run_id}"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every child (server, worker, deploy, flow runs): this control plane,
        telemetry and analytics off, never a temporary server."""
        env = without_caller_credentials(os.environ if base is None else base)
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_UI_URL=self.ui_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
            PREFECT_SERVER_EPHEMERAL_ENABLED="false",
            DO_NOT_TRACK="1",
            PREFECT_WORKER_QUERY_SECONDS=WORKER_QUERY_S,
            PREFECT_LOGGING_TO_API_BATCH_INTERVAL=LOG_BATCH_S,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY=HEARTBEAT_S,
            PREFECT_CLI_PROMPT="false",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        return env


def layout(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Layout:
    """The control plane the environment describes (see the module docstring)."""
    env = os.environ if environ is None else environ
    root = checkout_root(cwd)
    port = parse_port(env.get(PORT_ENV))
    local_api = f"http://{HOST}:{port}/api"
    api_url = (env.get("PREFECT_API_URL") or "").rstrip("/")
    external = bool(api_url) and not is_local_api(api_url, port)
    given = env.get(STATE_DIR_ENV)
    machine = for_server(machine_state_dir(env), port, api_url if external else None)
    state_dir = Path(given).absolute() if given else machine
    if not api_url or not external:
        api_url = local_api
    elif not urlsplit(api_url).scheme.startswith("http"):
        raise ConfigError(
            f"PREFECT_API_URL={api_url!r} is not an http(s) URL: set it like http://host:4200/api, "
            "or unset it to use the local control plane"
        )
    ui_url = (env.get("PREFECT_UI_URL") or "").rstrip("/") if external else ""
    if not ui_url:
        ui_url = api_url.removesuffix("/api")
    return Layout(root, state_dir, port, api_url, external, ui_url)


def prefect_executable() -> str:
    """The `prefect` command of this interpreter's environment."""
    return str(Path(sys.executable).parent / "prefect")
