"""LocalTarget's checks and bookkeeping that need neither Docker nor a running proxy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.config import LocalSettings, PipelineConfig
from flows.targets.base import GREY, MISSING, Target
from flows.targets.local.plans import PlanError, Registration
from flows.targets.local.target import LocalTarget, LocalTargetError, proxy_layout


class NoDocker:
    """A Docker client stand-in that fails the test if any Docker call is made."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"unexpected Docker call: {name}")


def make(tmp_path: Path, **updates: object) -> LocalTarget:
    config = PipelineConfig(local=LocalSettings(state_dir=tmp_path / "state"), **updates)  # type: ignore[arg-type]
    return LocalTarget(config, client=NoDocker())


def test_is_a_target(tmp_path: Path) -> None:
    target = make(tmp_path)
    assert isinstance(target, Target)
    assert target.name == "local"
    assert target.url("127.0.0.1:8081") == "http://127.0.0.1:8081"


def test_layout_defaults_under_the_state_dir(tmp_path: Path) -> None:
    layout = make(tmp_path).layout
    assert layout.socket_path == tmp_path / "state" / "haproxy.sock"
    assert layout.config_path == tmp_path / "state" / "haproxy.cfg"
    assert layout.pid_path == tmp_path / "state" / "haproxy.pid"
    assert (layout.prod_address, layout.preprod_address) == ("127.0.0.1:8080", "127.0.0.1:8081")


def test_a_too_long_admin_socket_path_is_refused_with_advice(tmp_path: Path) -> None:
    config = PipelineConfig(local=LocalSettings(state_dir=tmp_path / ("d" * 120)))
    with pytest.raises(LocalTargetError, match=r"set local\.proxy_admin_socket"):
        proxy_layout(config)
    short = config.local.model_copy(update={"proxy_admin_socket": tmp_path / "s.sock"})
    assert proxy_layout(config.model_copy(update={"local": short})).socket_path == tmp_path / "s.sock"


def test_two_distinct_environments_are_required(tmp_path: Path) -> None:
    with pytest.raises(LocalTargetError, match="two distinct environments"):
        make(tmp_path, environments=("node-1", "node-1"))


def test_an_empty_target_reports_both_environments_missing(tmp_path: Path) -> None:
    envs = make(tmp_path).environments()
    assert [(e.name, e.address, e.version, e.status, e.health) for e in envs] == [
        ("node-1", "127.0.0.1:8080", None, MISSING, GREY),
        ("node-2", "127.0.0.1:8081", None, MISSING, GREY),
    ]


def test_register_version_remembers_the_image_idempotently(tmp_path: Path) -> None:
    target = make(tmp_path)
    bundle = {"AWSEBDockerrunVersion": "1", "Image": {"Name": "127.0.0.1:5000/deliverypipeline:1.0.0"}}
    target.register_version("1.0.0", bundle)
    target.register_version("1.0.0", bundle)
    assert make(tmp_path).state.read().versions == {
        "1.0.0": Registration("127.0.0.1:5000/deliverypipeline:1.0.0", 8080)
    }
    with pytest.raises(PlanError, match=r"no Image\.Name"):
        target.register_version("2.0.0", {"AWSEBDockerrunVersion": "1"})


def test_deploy_and_swap_check_their_arguments_first(tmp_path: Path) -> None:
    target = make(tmp_path)
    with pytest.raises(
        LocalTargetError, match="unknown environment 'node-3'; this target has node-1, node-2"
    ):
        target.deploy("node-3", "1.0.0")
    with pytest.raises(LocalTargetError, match=r"version 1\.0\.0 is not registered"):
        target.deploy("node-2", "1.0.0")
    with pytest.raises(LocalTargetError, match="with itself"):
        target.swap("node-1", "node-1")
    with pytest.raises(LocalTargetError, match="unknown environment"):
        target.events("node-9", datetime.now(UTC))


def test_the_default_store_config_is_generated_once(tmp_path: Path) -> None:
    target = make(tmp_path)
    path = target.store_config_path()
    assert path == tmp_path / "state" / "store" / "application.conf"
    assert path.read_text() == '[store]\nkind = "sqlite"\npath = "/data/delivery.sqlite3"\n'


def test_a_configured_store_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "mongo.conf"
    target = make(tmp_path)
    target.config = target.config.model_copy(
        update={"local": target.config.local.model_copy(update={"store_config": missing})}
    )
    with pytest.raises(LocalTargetError, match="does not exist"):
        target.store_config_path()
    missing.write_text('[store]\nkind = "mongodb"\nuri = "mongodb://127.0.0.1:27017/delivery"\n')
    assert target.store_config_path() == missing
