"""`deliverypipeline run`: run the pipeline flow in this process for one repository and ref.

Without `PREFECT_API_URL` Prefect starts a temporary local server for the run; with it, the
run shows in that server's UI. The flow-run heartbeat is switched off for in-process runs
(it costs ~1 s per run and guards only runs executed by a worker).
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from flows.config import PipelineConfig


def load_config(path: Path | None) -> PipelineConfig:
    """A PipelineConfig from a JSON or TOML file (its fields, nested as in the model), or the defaults."""
    if path is None:
        return PipelineConfig()
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return PipelineConfig.model_validate(data)


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The config file (if any) with the command line's overrides applied."""
    config = load_config(args.config)
    updates: dict[str, Any] = {}
    for field in ("application", "prod_address", "preprod_address", "registry", "image_repository"):
        value = getattr(args, field)
        if value is not None:
            updates[field] = value
    if updates:
        config = config.model_copy(update=updates)
    if args.state_dir is not None:
        config = config.model_copy(
            update={"local": config.local.model_copy(update={"state_dir": args.state_dir.absolute()})}
        )
    return PipelineConfig.model_validate(config.model_dump())


def add_parser(subparsers: Any) -> None:
    """Register `run` with its options."""
    parser = subparsers.add_parser(
        "run",
        help="run the delivery pipeline (checkout, test, build, release) in this process",
        description="Run the pipeline flow for one commit: build, push and release it blue/green.",
    )
    parser.add_argument("--repo", default=".", help="repository: a path or a git URL (default: .)")
    parser.add_argument("--ref", default="HEAD", help="commit, branch or tag (default: HEAD)")
    parser.add_argument("--target", default="local", choices=("local", "aws"), help="where to release")
    parser.add_argument("--config", type=Path, help="a PipelineConfig as JSON or TOML")
    parser.add_argument("--application", help="application name (also names the run slot)")
    parser.add_argument("--prod-address", dest="prod_address", help="e.g. 127.0.0.1:8080")
    parser.add_argument("--preprod-address", dest="preprod_address", help="e.g. 127.0.0.1:8081")
    parser.add_argument("--registry", help="e.g. 127.0.0.1:5000")
    parser.add_argument("--image-repository", dest="image_repository", help="image name in the registry")
    parser.add_argument("--state-dir", dest="state_dir", type=Path, help="local target's state directory")
    parser.add_argument("--require-approval", action="store_true", help="pause for approval before the swap")
    parser.add_argument("--notify-url", dest="notify_url", help="chat webhook told how the release ended")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the flow; 0 when the release succeeded, 1 when the run failed (the reason is printed)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.pipeline import pipeline

    config = config_from_args(args)
    repo = str(Path(args.repo).absolute()) if Path(args.repo).is_dir() else args.repo
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = pipeline(
            repo=repo,
            ref=args.ref,
            target=args.target,
            config=config,
            require_approval=args.require_approval,
            notify_url=args.notify_url,
            return_state=True,
        )
    if state.is_completed():
        result = state.result()
        print(json.dumps(result, indent=2))
        return 0
    print(f"pipeline {state.name}: {state.message}")
    return 1
