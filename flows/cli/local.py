"""`deliverypipeline local status | swap | down`: look at, swap or tear down the local Docker target.

`status` prints each environment's address, version, container, status and health and whether
the proxy runs; `swap` exchanges the prod and preprod addresses by hand (the manual rollback:
the previous version still runs on preprod); `down` removes the containers and the proxy
process the target started, keeping the shared store's data unless `--purge`. Settings come
from `--config` (a PipelineConfig as JSON or TOML) with the options below overriding it;
defaults match PipelineConfig.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from flows.config import PipelineConfig
from flows.errors import TargetError


def load_config(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline configuration from `--config` and the command-line overrides."""
    from flows.cli.main import CliError

    raw: dict[str, Any] = {}
    if args.config is not None:
        path = Path(args.config)
        try:
            text = path.read_text()
            raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read config {path}: {exc}") from exc
    config = PipelineConfig.model_validate(raw)
    local = config.local
    if args.state_dir is not None:
        local = local.model_copy(update={"state_dir": Path(args.state_dir)})
    updates: dict[str, Any] = {"local": local}
    for option in ("application", "prod_address", "preprod_address"):
        value = getattr(args, option)
        if value is not None:
            updates[option] = value
    return config.model_copy(update=updates)


def _target(args: argparse.Namespace) -> Any:
    from flows.targets.local.target import LocalTarget

    return LocalTarget(load_config(args))


def run_status(args: argparse.Namespace) -> int:
    """Print both environments and the proxy."""
    from flows.cli.main import CliError

    try:
        target = _target(args)
        environments = target.environments()
        pid = target.proxy.pid()
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    proxy = f"running (pid {pid}, admin socket {target.layout.socket_path})" if pid else "not running"
    print(f"proxy: haproxy {proxy}")
    header = ("ENVIRONMENT", "ADDRESS", "VERSION", "CONTAINER", "STATUS", "HEALTH")
    rows = [
        (
            env.name,
            env.address,
            env.version or "-",
            str(env.details.get("container", "-")),
            env.status,
            env.health,
        )
        for env in environments
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def run_swap(args: argparse.Namespace) -> int:
    """Exchange the prod and preprod addresses; print who serves prod before and after."""
    from flows.cli.main import CliError
    from flows.release.decisions import DecisionError, describe, swap_pair
    from flows.release.operations import find_roles

    config = load_config(args)
    try:
        target = _target(args)
        roles = find_roles(target, config)
        print(f"before: prod is {describe(roles.prod)}")
        target.swap(*swap_pair(roles))
        after = find_roles(target, config)
    except (TargetError, DecisionError) as exc:
        raise CliError(str(exc)) from exc
    print(f"after:  prod is {describe(after.prod)}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Remove the containers and the proxy; the data too with --purge."""
    from flows.cli.main import CliError

    try:
        removed = _target(args).down(purge=args.purge)
    except TargetError as exc:
        raise CliError(str(exc)) from exc
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `local status`, `local swap` and `local down`."""
    parser = subparsers.add_parser("local", help="the local Docker target: status | swap | down")
    commands = parser.add_subparsers(dest="local_command", required=True)
    status = commands.add_parser("status", help="show both environments and the proxy")
    swap = commands.add_parser("swap", help="exchange the prod and preprod addresses (manual rollback)")
    down = commands.add_parser("down", help="remove the containers and the proxy (keeps data)")
    down.add_argument("--purge", action="store_true", help="also delete the shared data and state files")
    for sub in (status, swap, down):
        sub.add_argument("--config", help="a PipelineConfig file (.json, else TOML)")
        sub.add_argument("--state-dir", help="the target's state directory (default: local.state_dir)")
        sub.add_argument("--application", help="the application name (default: deliverypipeline)")
        sub.add_argument("--prod-address", help="default 127.0.0.1:8080")
        sub.add_argument("--preprod-address", help="default 127.0.0.1:8081")
    status.set_defaults(func=run_status)
    swap.set_defaults(func=run_swap)
    down.set_defaults(func=run_down)
