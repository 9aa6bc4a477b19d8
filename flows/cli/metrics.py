"""`deliverypipeline metrics`: delivery performance (DORA's four keys) per application and target.

Read from the control plane the CLI uses (`PREFECT_API_URL`, else the local one; see
flows/controlplane/layout.py), over the last 7 and 30 days (`--days` for one of them): a table
with DORA's elite levels beside and the runs behind each figure, or the same as JSON (`--json`)
with each run's UI address. Reads only; starts nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from flows.metrics.dora import ELITE, LABELS, WINDOWS, Keys, verdict

SHOWN_RUNS = 3  # runs named per figure in the table


HELP = "delivery performance (DORA's four keys) per application and target"
DESCRIPTION = (
    "Deployment frequency, lead time, change failure rate and recovery time, "
    "from the runs the control plane records, beside DORA's elite levels."
)


def add_parser(subparsers: Any) -> None:
    """Register `metrics`."""
    parser = subparsers.add_parser("metrics", help=HELP, description=DESCRIPTION)
    parser.add_argument("--days", type=int, choices=WINDOWS, help="one window (default: 7 and 30)")
    parser.add_argument("--json", action="store_true", help="print JSON, with each run's UI address")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the history once (the widest window) and print the keys of each window."""
    from flows.controlplane.api import ControlPlaneApi
    from flows.controlplane.layout import layout
    from flows.metrics.dora import four_keys
    from flows.metrics.history import read

    where = layout()
    windows = (args.days,) if args.days else WINDOWS
    now = now_utc()
    with ControlPlaneApi(where.api_url) as api:
        found, recovered = read(api, now, max(windows))
    keys = [k for days in windows for k in four_keys(found, recovered, now, days)]
    print(as_json(keys, where.run_url) if args.json else as_table(keys))
    return 0


def now_utc() -> datetime:
    """The moment the windows end (a function, so that a test can fix it)."""
    return datetime.now(UTC)


def as_table(keys: Sequence[Keys]) -> str:
    """The keys as text: one block per application, target and window, runs named below each figure."""
    if not keys:
        return "no release runs recorded in the window"
    lines: list[str] = []
    for group in keys:
        lines.append(f"{group.application} on {group.target}, last {group.days} days")
        for figure in group.figures:
            label = LABELS[figure.key]
            lines.append(f"  {label:<31} {figure.shown:<34} {verdict(figure):<12} elite: {ELITE[figure.key]}")
            names = [r.name for r in figure.runs]
            if names:
                more = f" (+{len(names) - SHOWN_RUNS} more)" if len(names) > SHOWN_RUNS else ""
                lines.append(f"  {'':<31} runs: {', '.join(names[:SHOWN_RUNS])}{more}")
            if figure.unknown:
                lines.append(f"  {'':<31} left out: {', '.join(r.name for r in figure.unknown[:SHOWN_RUNS])}")
        lines.append("")
    return "\n".join(lines).rstrip()


def as_json(keys: Sequence[Keys], run_url: Callable[[str], str]) -> str:
    """The keys as JSON: each figure's value, reading, elite level and runs (with their UI addresses)."""

    def runs(refs: Sequence[Any]) -> list[dict[str, str]]:
        return [{"id": r.run_id, "name": r.name, "url": run_url(r.run_id)} for r in refs]

    return json.dumps(
        [
            {
                "application": group.application,
                "target": group.target,
                "days": group.days,
                **{
                    figure.key: {
                        "value": figure.value,
                        "shown": figure.shown,
                        "elite": figure.elite,
                        "elite_level": ELITE[figure.key],
                        "runs": runs(figure.runs),
                        "left_out": runs(figure.unknown),
                    }
                    for figure in group.figures
                },
            }
            for group in keys
        ],
        indent=2,
    )
