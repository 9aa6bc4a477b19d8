"""The command line's pipeline settings: one way from parsed options to a `PipelineConfig`.

Every subcommand that acts on a target (`run`, `local ...`, `aws ...`) reads `--config` (a
PipelineConfig as TOML or JSON) and the options it defines on top, through `config_from_args`:
an option a subcommand does not define, or that was not given, leaves the file's value.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from flows.config import PipelineConfig, for_target, load_config


def _given(args: argparse.Namespace, name: str) -> Any:
    return getattr(args, name, None)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's settings, nested as in PipelineConfig (None: not given here)."""
    state_dir = _given(args, "state_dir")
    return {
        "application": _given(args, "application"),
        "prod_address": _given(args, "prod_address"),
        "preprod_address": _given(args, "preprod_address"),
        "registry": _given(args, "registry"),
        "image_repository": _given(args, "image_repository"),
        "environments": _given(args, "environments"),
        "local": {"state_dir": Path(state_dir).absolute() if state_dir is not None else None},
        "aws": {"region": _given(args, "region"), "endpoint_url": _given(args, "endpoint_url")},
    }


def config_from_args(args: argparse.Namespace, target: str | None = None) -> PipelineConfig:
    """The config file (if any) with the command line's overrides (`flows.config.load_config`); with
    `target`, the values left unset take that target's defaults (`for_target`)."""
    path = _given(args, "config")
    config = load_config(Path(path) if path else None, config_overrides(args))
    return for_target(config, target) if target else config
