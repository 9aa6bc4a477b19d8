"""The one place that turns a target's name into a `Target`: the flow knows nothing else about it.

A new target is registered here and proves itself by passing the contract suite (see
`flows/targets/base.py` and `tests/flows/targets/test_contract.py`: one stage fixture).
"""

from __future__ import annotations

from typing import Any

from flows.config import PipelineConfig
from flows.errors import ConfigError
from flows.targets.base import Target

TARGETS = ("local", "aws", "swarm")


class UnknownTarget(ConfigError):
    """The flow was asked for a target that does not exist."""


def make_target(name: str, config: PipelineConfig, **options: Any) -> Target:
    """The target called `name` (`local`, `aws` or `swarm`) for `config`; `options` go to its constructor.

    Imported lazily: a local release does not load boto3, an AWS one does not need HAProxy.
    """
    if name == "local":
        from flows.targets.local.target import LocalTarget

        return LocalTarget(config, **options)
    if name == "aws":
        from flows.targets.aws.target import ElasticBeanstalkTarget

        return ElasticBeanstalkTarget(config, **options)
    if name == "swarm":
        from flows.targets.swarm.target import SwarmTarget

        return SwarmTarget(config, **options)
    raise UnknownTarget(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
