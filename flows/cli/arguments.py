"""Options several target subcommands share: which application, and which prod and preprod addresses."""

from __future__ import annotations

from typing import Any


def address_options(parser: Any) -> None:
    """Add `--application`, `--prod-address` and `--preprod-address` (unset: the configuration's)."""
    parser.add_argument("--application", help="the application name (default: deliverypipeline)")
    parser.add_argument("--prod-address", help="the prod address (default 127.0.0.1:8080)")
    parser.add_argument("--preprod-address", help="the preprod address (default 127.0.0.1:8081)")
