"""LocalTarget's checks and bookkeeping that need neither Docker nor a running proxy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.config import PipelineConfig
from flows.targets.base import GREY, MISSING, Target
from flows.targets.local.containers import Registration
from flows.targets.local.plans import PlanError
from flows.targets.local.settings import LocalSettings
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
    assert make(tmp_path).site.state.read().versions == {
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
    path = target.deployer.store_config_path()
    assert path == tmp_path / "state" / "store" / "application.conf"
    assert path.read_text() == '[store]\nkind = "sqlite"\npath = "/data/delivery.sqlite3"\n'


def test_a_configured_store_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "mongo.conf"
    local = LocalSettings(state_dir=tmp_path / "state", store_config=missing)
    target = LocalTarget(PipelineConfig(local=local), client=NoDocker())
    with pytest.raises(LocalTargetError, match="does not exist"):
        target.deployer.store_config_path()
    missing.write_text('[store]\nkind = "mongodb"\nuri = "mongodb://127.0.0.1:27017/delivery"\n')
    assert target.deployer.store_config_path() == missing


class DeadEngine:
    """A Docker client whose engine does not answer."""

    def ping(self) -> None:
        raise ConnectionError("connection refused")


def test_preflight_lists_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    import socket

    from tests.support import free_port

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = f"127.0.0.1:{squatter.getsockname()[1]}"
        config = PipelineConfig(
            prod_address=taken,
            preprod_address=f"127.0.0.1:{free_port()}",
            local=LocalSettings(state_dir=tmp_path / "state"),
        )
        target = LocalTarget(config, client=DeadEngine())
        target.haproxy.binary = str(tmp_path / "no-haproxy")
        problems = target.preflight()
    assert (
        problems[0] == f"haproxy not installed ({tmp_path / 'no-haproxy'}): run `bash scripts/setup-host.sh`"
    )
    assert problems[1].startswith("Docker engine not reachable (connection refused)")
    assert problems[2].startswith(
        f"address {taken} is in use by a process that is no deliverypipeline target"
    )
    assert len(problems) == 3
    assert not (tmp_path / "state" / "haproxy.pid").exists()
    same = make(tmp_path, prod_address="127.0.0.1:9", preprod_address="127.0.0.1:9")
    same.haproxy.binary = "/bin/true"
    assert "both 127.0.0.1:9" in same.preflight()[-1]


def test_keep_releases_must_keep_at_least_two() -> None:
    from pydantic import ValidationError

    assert LocalSettings().keep_releases == 5
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        LocalSettings(keep_releases=1)


def test_containers_are_named_and_labelled_after_the_target(tmp_path: Path) -> None:
    target = LocalTarget(
        PipelineConfig(local=LocalSettings(state_dir=tmp_path / "state")), client=NoDocker(), run="run-9"
    )
    other = LocalTarget(PipelineConfig(local=LocalSettings(state_dir=tmp_path / "other")), client=NoDocker())
    assert target.site.identity != other.site.identity and len(target.site.identity) == 8
    assert target.site.run == "run-9"
    assert target.site.labels()["deliverypipeline.target"] == target.site.identity
