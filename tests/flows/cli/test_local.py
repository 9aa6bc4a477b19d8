"""`deliverypipeline local status | down`: options, configuration files and the status table."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.cli import local as cli
from flows.cli.main import CliError
from flows.cli.options import config_from_args
from flows.config import PipelineConfig
from flows.targets.base import GREEN, GREY, MISSING, READY, Environment, LockHolder
from flows.targets.local.status import ContainerFacts
from tests.flows.fakes import FakeTarget


def local_config(args: argparse.Namespace) -> PipelineConfig:
    """What `local ...` acts with: the command line's settings on the local target's defaults."""
    return config_from_args(args, "local")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(required=True))
    return parser.parse_args(list(argv))


def test_defaults_match_the_pipeline_config() -> None:
    config = local_config(parse("local", "status"))
    assert (config.application, config.prod_address, config.preprod_address) == (
        "deliverypipeline",
        "127.0.0.1:8080",
        "127.0.0.1:8081",
    )
    assert config.local.state_dir == Path("/var/lib/deliverypipeline/local")


def test_options_override_a_toml_config(tmp_path: Path) -> None:
    file = tmp_path / "pipeline.toml"
    file.write_text(
        'application = "shop"\nprod_address = "127.0.0.1:9080"\n[local]\nstate_dir = "/srv/shop"\n'
    )
    config = local_config(
        parse("local", "down", "--config", str(file), "--preprod-address", "127.0.0.1:9081")
    )
    assert (config.application, config.prod_address, config.preprod_address) == (
        "shop",
        "127.0.0.1:9080",
        "127.0.0.1:9081",
    )
    assert config.local.state_dir == Path("/srv/shop")
    config = local_config(parse("local", "down", "--config", str(file), "--state-dir", str(tmp_path)))
    assert config.local.state_dir == tmp_path


def test_a_json_config(tmp_path: Path) -> None:
    file = tmp_path / "pipeline.json"
    file.write_text(json.dumps({"environments": ["blue", "green"]}))
    assert local_config(parse("local", "status", "--config", str(file))).environments == ("blue", "green")


def test_an_unreadable_config_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    with pytest.raises(CliError, match="cannot read the configuration") as failure:
        local_config(parse("local", "status", "--config", str(path)))
    assert str(path) in str(failure.value)


def test_down_takes_purge() -> None:
    assert parse("local", "down", "--purge").purge is True
    assert parse("local", "down").purge is False
    assert parse("local", "down").func is cli.run_down
    assert parse("local", "down").lock_wait == 60.0
    assert parse("local", "down", "--lock-wait", "5").lock_wait == 5.0


class FakeProxy:
    def pid(self) -> int | None:
        return 4242


class FakeLayout:
    socket_path = Path("/state/haproxy.sock")


class FakeLocalTarget:
    """A `LocalTarget` stand-in for the CLI: a proxy, a lock, two environments, orphans and `down`."""

    proxy = FakeProxy()
    layout = FakeLayout()

    def __init__(self, orphans: list[ContainerFacts] | None = None) -> None:
        self.found_orphans = orphans or []
        self.locks: list[tuple[LockHolder, float]] = []
        self.locked = False

    def orphans(self) -> list[ContainerFacts]:
        return self.found_orphans

    @contextlib.contextmanager
    def lock(self, holder: LockHolder, wait_s: float, log: Any) -> Iterator[None]:
        self.locks.append((holder, wait_s))
        self.locked = True
        try:
            yield
        finally:
            self.locked = False

    def environments(self) -> list[Environment]:
        return [
            Environment("node-1", "127.0.0.1:8081", None, MISSING, GREY),
            Environment("node-2", "127.0.0.1:8080", "1.2.0", READY, GREEN, {"container": "app-node-2-1.2.0"}),
        ]

    def down(self, purge: bool) -> list[str]:
        assert self.locked, "down runs under the release lock"
        return ["container app-node-2-1.2.0", "haproxy"] if not purge else []


def test_status_prints_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake: Any = FakeLocalTarget()
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    args = parse("local", "status")
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "proxy: haproxy running (pid 4242, admin socket /state/haproxy.sock)",
        "ENVIRONMENT  ADDRESS         VERSION  CONTAINER         STATUS   HEALTH",
        "node-1       127.0.0.1:8081  -        -                 Missing  Grey",
        "node-2       127.0.0.1:8080  1.2.0    app-node-2-1.2.0  Ready    Green",
    ]


def test_status_lists_orphans(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    orphan = ContainerFacts(
        "app-ab12cd34-node-1-2.0.0", "f" * 64, "running", "starting", "2.0.0", "img", 32999, "node-1"
    )
    fake: Any = FakeLocalTarget([orphan])
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    args = parse("local", "status")
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("orphans: 1 container(s) no environment points at")
    assert out[-1] == "  app-ab12cd34-node-1-2.0.0  environment node-1  version 2.0.0  running"


def test_down_prints_what_it_removed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake: Any = FakeLocalTarget()
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    args = parse("local", "down")
    assert args.func(args) == 0
    assert capsys.readouterr().out == "removed container app-node-2-1.2.0\nremoved haproxy\n"
    args = parse("local", "down", "--purge")
    assert args.func(args) == 0
    assert capsys.readouterr().out == "nothing to remove\n"
    holder, wait_s = fake.locks[0]
    assert (holder.operation, holder.run, holder.pid, wait_s) == ("down", "cli", os.getpid(), 60.0)
    assert fake.locks[1][0].operation == "down --purge"


def test_swap_exchanges_the_addresses_under_the_lock_and_says_who_serves_prod(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    fake = FakeTarget.pair(prod_version="v2", preprod_version="v1")
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    args = parse("local", "swap")
    assert args.func(args) == 0
    assert fake.serving("127.0.0.1:8080").version == "v1"
    assert fake.serving("127.0.0.1:8080").name == "node-2"
    assert fake.calls == [("lock", "manual swap"), ("swap", "node-2", "node-1"), ("unlock", "manual swap")]
    assert [(who.operation, who.run, who.pid) for who in fake.held_by] == [
        ("manual swap", "cli", os.getpid())
    ]
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "before: prod was node-1 at 127.0.0.1:8080: version v2, status Ready, health Green"
    assert lines[-1] == "after:  prod is node-2 at 127.0.0.1:8080: version v1, status Ready, health Green"
    assert any(line.startswith("holding the fake target's lock: manual swap (run cli") for line in lines)


def test_swap_on_a_locked_target_is_a_one_line_error_and_nothing_moves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli.main import main

    fake = FakeTarget.pair()
    fake.lock_holder = LockHolder("release v9", "run-9", 99, "host", "2026-12-01T00:00:00+00:00")
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    assert main(["local", "swap"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("deliverypipeline: the target is locked by release v9 (run run-9")
    assert len(error.splitlines()) == 1
    assert fake.calls == [] and fake.serving("127.0.0.1:8080").name == "node-1"


def test_swap_without_an_environment_on_an_address_is_a_user_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from flows.cli.main import main

    fake = FakeTarget.pair()
    fake.envs["node-2"] = replace(fake.envs["node-2"], address="")
    monkeypatch.setattr(cli, "_target", lambda args: fake)
    assert main(["local", "swap"]) == 2  # printed as one line by the entry point, no traceback
    error = capsys.readouterr().err
    assert error.startswith("deliverypipeline: no environment holds the address '127.0.0.1:8081'")
    assert len(error.splitlines()) == 1
    assert fake.serving("127.0.0.1:8080").name == "node-1"
    assert fake.calls == [("lock", "manual swap"), ("unlock", "manual swap")]  # found under the lock
