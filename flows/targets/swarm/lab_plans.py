"""Pure plans of the local swarm lab: the steps `swarm up` and `swarm down` carry out, in order.

Nothing here runs anything. A node is a network namespace on a Linux bridge (a veth pair each,
addresses in a private /24 of our own), with its own `dockerd` started through
`nsenter --net=...` (`ip netns exec` remounts /sys and dockerd then finds no devices cgroup) and
`unshare --uts` (so each node has its own host name), its own data root, exec root, socket and
pid file, and the registry the nodes reach listed in `insecure-registries`. The host engine's
FORWARD policy drops bridged traffic, so one `DOCKER-USER` rule accepts the bridge's own; the
registry is served to the nodes by a second registry process on the bridge's address over the
host registry's storage. `lab_executor` carries the steps out and records the pids; the down
plan is built from that record, each step tolerant of what is already gone.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BINARY = "docker-registry"
REGISTRY_STORAGE = Path("/var/lib/deliverypipeline/registry")  # the host registry's (scripts/setup-host.sh)


@dataclass(frozen=True)
class Command:
    """Run `argv`; with `check=False` a failure is only reported (tear-down of what may be gone)."""

    argv: tuple[str, ...]
    check: bool = True


@dataclass(frozen=True)
class WriteFile:
    """Write `text` to `path`, creating its directory."""

    path: Path
    text: str


@dataclass(frozen=True)
class Spawn:
    """Start a long-lived process detached from us, its output in `log`; its pid is recorded as `name`."""

    name: str
    argv: tuple[str, ...]
    log: Path


@dataclass(frozen=True)
class WaitEngine:
    """Wait until the engine on `socket` answers."""

    node: str
    socket: Path


@dataclass(frozen=True)
class SwarmInit:
    """`swarm init` on the first node, advertising its bridge address."""

    node: str
    socket: Path
    address: str


@dataclass(frozen=True)
class SwarmJoin:
    """`swarm join` of a node to the manager, as a worker."""

    node: str
    socket: Path
    address: str
    manager_socket: Path
    manager_address: str


@dataclass(frozen=True)
class Kill:
    """Stop the process recorded as `name` (pid `pid`, only if its command line still names `binary`)."""

    name: str
    pid: int
    binary: str


@dataclass(frozen=True)
class Unmount:
    """Unmount every mount under `root` (the network-namespace files an engine leaves in its exec root)."""

    root: Path


@dataclass(frozen=True)
class Remove:
    """Remove a file, or a directory and everything in it, if it exists."""

    path: Path


Step = Command | WriteFile | Spawn | WaitEngine | SwarmInit | SwarmJoin | Kill | Unmount | Remove


@dataclass(frozen=True)
class LabNode:
    """One node of the lab: its names, address and files."""

    name: str  # node-1 (also its host name)
    netns: str
    address: str
    host_veth: str
    dir: Path  # sockets, pid file, exec root (short paths: socket paths have a length limit)
    data_root: Path

    @property
    def socket(self) -> Path:
        """The node engine's API socket."""
        return self.dir / "docker.sock"

    @property
    def exec_root(self) -> Path:
        """The node engine's exec root (its containerd, and the namespace files it mounts)."""
        return self.dir / "exec"


@dataclass(frozen=True)
class LabLayout:
    """Everything that names a lab: its size, bridge, address range and directories."""

    nodes: int
    run_dir: Path
    state_dir: Path
    subnet: str = "10.231.0"  # a /24: .1 the bridge, .(10+N) node N
    bridge: str = "dpswarm0"
    prefix: str = "dpswarm"
    registry_port: int = 5000
    registry_storage: Path = REGISTRY_STORAGE

    @property
    def gateway(self) -> str:
        """The bridge's address on the host: the nodes reach the registry (and the host) here."""
        return f"{self.subnet}.1"

    @property
    def registry(self) -> str:
        """The registry address the nodes pull from."""
        return f"{self.gateway}:{self.registry_port}"

    @property
    def registry_config(self) -> Path:
        """The configuration file of the nodes' registry listener."""
        return self.state_dir / "registry.yml"

    @property
    def record_path(self) -> Path:
        """Where `swarm up` records what it started (pids), for `swarm down`."""
        return self.run_dir / "lab.json"

    def node(self, number: int) -> LabNode:
        """Node `number` (1-based)."""
        name = f"node-{number}"
        return LabNode(
            name=name,
            netns=f"{self.prefix}-{name}",
            address=f"{self.subnet}.{10 + number}",
            host_veth=f"{self.prefix}v{number}",
            dir=self.run_dir / name,
            data_root=self.state_dir / name / "engine",
        )

    def all_nodes(self) -> list[LabNode]:
        """Every node, node-1 first (the manager)."""
        return [self.node(number) for number in range(1, self.nodes + 1)]


@dataclass(frozen=True)
class LabRecord:
    """What `swarm up` started: the layout and the pid of each process by name."""

    layout: LabLayout
    pids: dict[str, int] = field(default_factory=dict)


def forward_rule(bridge: str) -> tuple[str, ...]:
    """The DOCKER-USER rule (after `-I`/`-D`) accepting traffic between the bridge's ports."""
    return ("DOCKER-USER", "-i", bridge, "-o", bridge, "-j", "ACCEPT")


def registry_config_text(layout: LabLayout) -> str:
    """The nodes' registry listener: the host registry's storage, served on the bridge address."""
    return (
        "# Generated by `deliverypipeline swarm up`: the host registry's storage, served to the nodes.\n"
        "version: 0.1\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {layout.registry_storage}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: {layout.registry}\n"
    )


def dockerd_argv(layout: LabLayout, node: LabNode) -> tuple[str, ...]:
    """The node's engine: in its network namespace, with its own host name, files and registry."""
    dockerd = shlex.join(
        [
            "dockerd",
            "--data-root",
            str(node.data_root),
            "--exec-root",
            str(node.exec_root),
            "--host",
            f"unix://{node.socket}",
            "--pidfile",
            str(node.dir / "docker.pid"),
            "--insecure-registry",
            layout.registry,
            "--bridge",
            "none",
            "--iptables=false",
        ]
    )
    return (
        "nsenter",
        f"--net=/var/run/netns/{node.netns}",
        "unshare",
        "--uts",
        "sh",
        "-c",
        f"hostname {node.name} && exec {dockerd}",
    )


def node_network(layout: LabLayout, node: LabNode) -> list[Step]:
    """A node's namespace, its veth pair on the bridge, its address and its default route."""
    ns = node.netns
    return [
        Command(("ip", "netns", "add", ns)),
        Command(("ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)),
        Command(("ip", "link", "set", node.host_veth, "master", layout.bridge, "up")),
        Command(("ip", "-n", ns, "addr", "add", f"{node.address}/24", "dev", "eth0")),
        Command(("ip", "-n", ns, "link", "set", "eth0", "up")),
        Command(("ip", "-n", ns, "link", "set", "lo", "up")),
        Command(("ip", "-n", ns, "route", "add", "default", "via", layout.gateway)),
    ]


def up_plan(layout: LabLayout) -> list[Step]:
    """Every step of `swarm up`: bridge, forward rule, registry, nodes, engines, swarm init and joins."""
    steps: list[Step] = [
        Command(("ip", "link", "add", layout.bridge, "type", "bridge")),
        Command(("ip", "addr", "add", f"{layout.gateway}/24", "dev", layout.bridge)),
        Command(("ip", "link", "set", layout.bridge, "up")),
        Command(("iptables", "-I", *forward_rule(layout.bridge))),
        WriteFile(layout.registry_config, registry_config_text(layout)),
        Spawn(
            "registry",
            (REGISTRY_BINARY, "serve", str(layout.registry_config)),
            layout.state_dir / "registry.log",
        ),
    ]
    nodes = layout.all_nodes()
    for node in nodes:
        steps += node_network(layout, node)
    for node in nodes:
        steps.append(Spawn(node.name, dockerd_argv(layout, node), node.data_root.parent / "dockerd.log"))
    steps += [WaitEngine(node.name, node.socket) for node in nodes]
    manager = nodes[0]
    steps.append(SwarmInit(manager.name, manager.socket, manager.address))
    steps += [
        SwarmJoin(node.name, node.socket, node.address, manager.socket, manager.address) for node in nodes[1:]
    ]
    return steps


def down_plan(record: LabRecord) -> list[Step]:
    """Every step of `swarm down`, from what `up` recorded; each tolerates what is already gone.

    Engines stop first (by pid), then the namespace files they mounted are unmounted (else the
    namespaces and veths outlive them), then namespaces, bridge, forward rule and directories go.
    """
    layout = record.layout
    nodes = layout.all_nodes()
    steps: list[Step] = [
        Kill(node.name, record.pids[node.name], "dockerd") for node in nodes if node.name in record.pids
    ]
    if "registry" in record.pids:
        steps.append(Kill("registry", record.pids["registry"], REGISTRY_BINARY))
    steps += [Unmount(node.exec_root) for node in nodes]
    steps += [Command(("ip", "netns", "delete", node.netns), check=False) for node in nodes]
    steps += [
        Command(("ip", "link", "delete", layout.bridge), check=False),
        Command(("iptables", "-D", *forward_rule(layout.bridge)), check=False),
    ]
    steps += [Remove(node.data_root.parent) for node in nodes]
    steps += [
        Remove(layout.registry_config),
        Remove(layout.state_dir / "registry.log"),
        Remove(layout.run_dir),
    ]
    return steps


def layout_for(nodes: int, run_dir: Path, state_dir: Path) -> LabLayout:
    """The lab of `nodes` nodes with its sockets under `run_dir` and its node data under `state_dir`."""
    if not 1 <= nodes <= 9:
        raise ValueError(f"a lab has 1 to 9 nodes, not {nodes}")
    return LabLayout(nodes=nodes, run_dir=run_dir.absolute(), state_dir=state_dir.absolute())
