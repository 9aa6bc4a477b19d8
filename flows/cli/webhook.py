"""`deliverypipeline webhook`: serve the GitHub webhook receiver with uvicorn.

The secret comes from `DELIVERY_WEBHOOK_SECRET` (never a command-line argument, which `ps` shows);
without it, or without a Prefect server to create runs on, the command refuses to start.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flows.webhook.app import MAX_BODY, PATH
from flows.webhook.trigger import DEFAULT_TIMEOUT_S

SECRET_ENV = "DELIVERY_WEBHOOK_SECRET"
DEFAULT_DEPLOYMENT = "deliverypipeline/local"


def add_parser(subparsers: Any) -> None:
    """Register `webhook` on the top-level command."""
    parser = subparsers.add_parser(
        "webhook",
        help="receive GitHub push webhooks and start pipeline runs",
        description=f"Serve POST {PATH}: a signed push to a release branch creates a flow run of "
        f"the deployment. The secret is read from ${SECRET_ENV}; runs are created on the Prefect "
        "server at --api-url (default: $PREFECT_API_URL).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    parser.add_argument(
        "--deployment",
        default=DEFAULT_DEPLOYMENT,
        help=f"FLOW/DEPLOYMENT to run for a push (default {DEFAULT_DEPLOYMENT})",
    )
    parser.add_argument(
        "--branch",
        action="append",
        dest="branches",
        metavar="BRANCH",
        help="a branch whose pushes start a release; repeat for several (default: main)",
    )
    parser.add_argument("--api-url", default=None, help="Prefect API URL (default: $PREFECT_API_URL)")
    parser.add_argument(
        "--prefect-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds allowed to create the run before answering 503 (default {DEFAULT_TIMEOUT_S:g}; "
        "GitHub waits 10)",
    )
    parser.add_argument(
        "--max-body", type=int, default=MAX_BODY, help=f"largest accepted body in bytes (default {MAX_BODY})"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the settings, then serve until interrupted."""
    from flows.cli.main import CliError

    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise CliError(
            f"{SECRET_ENV} is not set: refusing to accept unsigned webhooks. Set it to the secret "
            "configured on the GitHub webhook (e.g. `export DELIVERY_WEBHOOK_SECRET=$(openssl rand -hex 32)`)"
        )
    api_url = args.api_url or os.environ.get("PREFECT_API_URL", "")
    if not api_url:
        raise CliError(
            "no Prefect server: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) or pass --api-url"
        )
    if not 0 < args.prefect_timeout < 10:
        raise CliError("--prefect-timeout must be between 0 and 10 seconds (GitHub waits 10)")
    if "/" not in args.deployment:
        raise CliError(f"--deployment {args.deployment!r} must be FLOW/DEPLOYMENT, e.g. {DEFAULT_DEPLOYMENT}")

    import logging

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")

    from flows.webhook.app import create_app
    from flows.webhook.trigger import PrefectTrigger

    app = create_app(
        secret=secret.encode(),
        trigger=PrefectTrigger(args.deployment, api_url, timeout_s=args.prefect_timeout),
        branches=args.branches or ["main"],
        max_body=args.max_body,
    )
    print(
        f"webhook receiver: POST http://{args.host}:{args.port}{PATH} → {args.deployment} "
        f"on {api_url} (branches: {', '.join(args.branches or ['main'])})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
