"""`deliverypipeline run`: submit a run of the `deliverypipeline/<target>` deployment and follow it.

The run goes to the one local control plane (started when missing, reused when it answers, left
running; see `deliverypipeline server`), so it shows in the UI, can be re-run from there, and
shares the run slot with every other entry point. Its logs stream here; the UI address is printed
at the start and at the end; the exit code says how it ended (0 completed, 1 failed, 3 crashed,
4 cancelled, 130 cancelled with Ctrl-C, 2 bad input). Ctrl-C cancels the run itself.

The caller's credentials (AWS from boto3's chain, DELIVERY_REGISTRY_USER/PASSWORD) reach the run
in Secret blocks made for it and removed when it ends (`flows.cli.handover`); only the blocks'
names are among its parameters.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path
from typing import Any

from flows.cli.options import config_from_args
from flows.config import PipelineConfig


def add_parser(subparsers: Any) -> None:
    """Register `run` with its options."""
    parser = subparsers.add_parser(
        "run",
        help="run the delivery pipeline on the local control plane and follow it",
        description="Submit a run of the deliverypipeline/<target> deployment for one commit (build, push, "
        "release blue/green) and follow its logs to the end; Ctrl-C cancels the run.",
    )
    parser.add_argument("--repo", default=".", help="repository: a path or a git URL (default: .)")
    parser.add_argument("--ref", default="HEAD", help="commit, branch or tag (default: HEAD)")
    parser.add_argument(
        "--target", default="local", choices=("local", "aws", "swarm"), help="where to release"
    )
    parser.add_argument("--config", type=Path, help="a PipelineConfig as JSON or TOML")
    parser.add_argument("--application", help="application name (names its containers and images)")
    parser.add_argument("--prod-address", dest="prod_address", help="e.g. 127.0.0.1:8080")
    parser.add_argument("--preprod-address", dest="preprod_address", help="e.g. 127.0.0.1:8081")
    parser.add_argument("--registry", help="e.g. 127.0.0.1:5000")
    parser.add_argument("--image-repository", dest="image_repository", help="image name in the registry")
    parser.add_argument("--state-dir", dest="state_dir", type=Path, help="local target's state directory")
    parser.add_argument(
        "--environments", nargs=2, metavar=("A", "B"), help="the two environments (aws: EB environment names)"
    )
    parser.add_argument("--region", help="aws: the region, e.g. eu-west-1")
    parser.add_argument("--endpoint-url", dest="endpoint_url", help="aws: an endpoint URL (e.g. a stand-in)")
    parser.add_argument(
        "--require-approval",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pause for a person's approval before the swap (default: the deployment's: local no, aws yes)",
    )
    parser.add_argument("--notify-url", dest="notify_url", help="chat webhook told how the release ended")
    parser.set_defaults(func=run)


def resolve_ref(repo: str, ref: str) -> str:
    """The commit `ref` names in a local repository (so the run releases exactly it), else `ref`."""
    if not Path(repo).is_dir() or ref.startswith("-"):
        return ref
    done = subprocess.run(
        ["git", "-C", repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else ref


def run_parameters(args: argparse.Namespace, config: PipelineConfig) -> dict[str, Any]:
    """The flow run's parameters: the deployment's defaults are used for what is not given."""
    repo = str(Path(args.repo).absolute()) if Path(args.repo).is_dir() else args.repo
    parameters: dict[str, Any] = {
        "repo": repo,
        "ref": resolve_ref(repo, args.ref),
        "target": args.target,
    }
    if args.require_approval is not None:  # else the deployment's default (aws: approval on)
        parameters["require_approval"] = args.require_approval
    if args.notify_url:
        parameters["notify_url"] = args.notify_url
    settings = config.model_dump(mode="json", exclude_defaults=True)
    if settings:
        parameters["config"] = settings
    return parameters


def run(args: argparse.Namespace) -> int:
    """Submit the run and follow it; the exit code says how it ended (see the module docstring)."""
    config = config_from_args(args)  # bad input fails before anything is started
    from flows.cli.handover import gather, handed_over
    from flows.controlplane.ensure import say, up
    from flows.controlplane.follow import Follower, submit
    from flows.controlplane.secrets import SecretBlocks

    handover = gather(args.target, config, os.environ)  # the caller's credentials, resolved here
    from flows.controlplane.decisions import EXIT_CRASHED

    ended: list[int] = []  # the run's exit code once followed; a crashed run's recovery needs its blocks
    crashed = lambda: ended == [EXIT_CRASHED]  # noqa: E731 - read when the blocks would be removed
    with up() as (ready, client), handed_over(SecretBlocks(client), handover, say, keep=crashed) as config:
        flow_run = submit(client, args.target, run_parameters(args, config))
        ended.append(Follower(client, ready.layout, flow_run.id).run())
    return ended[0]
