"""The `swarm` section of the configuration: defaults for the lab, and refused values."""

from __future__ import annotations

import pytest

from flows.config import load_config
from flows.errors import ConfigError


def test_defaults_name_the_labs_manager_and_registry() -> None:
    swarm = load_config(None).swarm
    assert swarm.manager == "unix:///run/deliverypipeline/swarm/node-1/docker.sock"
    assert swarm.registry == "10.231.0.1:5000"
    assert swarm.ports == (9081, 9082)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"waves": [1, "50%"]}, "must end with '100%'"),
        ({"ports": [9000, 9000]}, "two different ports"),
        ({"lock_renew": 60, "lock_lease": 30}, "must be shorter than swarm.lock_lease"),
    ],
)
def test_bad_swarm_settings_are_one_clear_line(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, {"swarm": section})
