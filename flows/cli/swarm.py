"""`deliverypipeline swarm up | down | status`: the local swarm lab, and every node of a swarm.

`up --nodes N` creates N nodes as network namespaces on one bridge, each with its own Docker
engine, forms a swarm (node-1 the manager) and serves the registry to the nodes; `down` stops
the edge proxy and what `up` started, by pid, and removes the namespaces, the bridge, the
forward rule and the nodes' data. `status` shows every node of the swarm the configuration
names (`swarm.manager`), its state and the version each environment runs on it. Settings come
from `--config` with the options overriding it.
"""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.arguments import address_options
from flows.cli.options import config_from_args
from flows.cli.tables import table_lines
from flows.errors import TargetError


def _layout(args: argparse.Namespace) -> Any:
    from flows.targets.swarm.lab_plans import layout_for

    settings = config_from_args(args, "swarm").swarm
    nodes = args.nodes if getattr(args, "nodes", None) is not None else settings.nodes
    return layout_for(nodes, settings.run_dir, settings.state_dir)


def run_up(args: argparse.Namespace) -> int:
    """Create the lab's nodes, engines, swarm and registry listener."""
    from flows.cli.main import CliError
    from flows.targets.swarm.lab_executor import LabExecutor

    try:
        layout = _layout(args)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        LabExecutor().up(layout)
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    manager = layout.node(1)
    print(
        f"swarm lab up: {layout.nodes} node(s) on {layout.subnet}.0/24, manager unix://{manager.socket}, "
        f"registry for the nodes {layout.registry}"
    )
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Stop and remove what `swarm up` started."""
    from flows.cli.main import CliError
    from flows.targets.swarm.lab_executor import LabExecutor
    from flows.targets.swarm.target import SwarmTarget

    try:
        edge = SwarmTarget(config_from_args(args, "swarm")).edge
        for line in edge.stop():
            print(f"removed {line}")
        removed = LabExecutor().down(_layout(args))
    except (TargetError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    print("swarm lab down" if removed else "no swarm lab is up")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print every node: its state, address and the version of each environment on it."""
    from flows.cli.main import CliError
    from flows.targets.swarm.status import node_rows

    config = config_from_args(args, "swarm")
    try:
        header, rows = node_rows(config)
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    print("\n".join(table_lines(header, rows)))
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `swarm up`, `swarm down` and `swarm status`."""
    parser = subparsers.add_parser(
        "swarm", help="the Docker Swarm target and its local lab: up | down | status"
    )
    commands = parser.add_subparsers(dest="swarm_command", required=True)
    up = commands.add_parser("up", help="create a local swarm of N nodes (network namespaces)")
    down = commands.add_parser("down", help="remove the local swarm lab, by pid")
    status = commands.add_parser("status", help="every node, its state and each environment's version on it")
    up.add_argument("--nodes", type=int, help="how many nodes (default: swarm.nodes, 3)")
    for sub in (up, down, status):
        sub.add_argument("--config", help="a PipelineConfig file (.json, else TOML)")
    address_options(status)
    up.set_defaults(func=run_up)
    down.set_defaults(func=run_down)
    status.set_defaults(func=run_status)
