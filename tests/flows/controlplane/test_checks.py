"""Bad input found before anything starts: an unwritable state dir, a taken port, a silent API URL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from flows.controlplane import deployments, server
from flows.controlplane.layout import layout
from flows.errors import ConfigError
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[3]


def _quiet(_: str) -> None:
    pass


def test_a_state_dir_that_cannot_be_written_says_how_to_give_another(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    where = layout({"DELIVERY_STATE_DIR": str(blocker / "state")}, cwd=ROOT)
    with pytest.raises(
        ConfigError, match=r"is not writable .*set DELIVERY_STATE_DIR to a writable directory"
    ):
        server.check_state_dir(where)


@pytest.mark.slow  # starts processes and waits on them
def test_a_port_held_by_another_program_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        where = layout({"DELIVERY_STATE_DIR": str(tmp_path), "PREFECT_PORT": str(port)}, cwd=ROOT)
        with pytest.raises(ConfigError) as raised:
            server.ensure_server(where, _quiet)
    assert f"something already listens on 127.0.0.1:{port} and is not a Prefect server" in str(raised.value)
    assert "set PREFECT_PORT to a free port" in str(raised.value)
    assert not (tmp_path / "controlplane" / "server.json").exists()  # nothing was started


@pytest.mark.slow  # starts processes and waits on them
def test_an_api_url_that_does_not_answer_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "EXTERNAL_WAIT_S", 0.2)
    url = f"http://127.0.0.1:{free_port()}/api"
    where = layout({"PREFECT_API_URL": url, "DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT)
    with pytest.raises(ConfigError, match=r"PREFECT_API_URL=.* does not answer .*unset PREFECT_API_URL"):
        server.ensure_server(where, _quiet)


def test_deployments_are_redeployed_only_when_what_they_come_from_changed(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("name: x\n")
    first = deployments.fingerprint(tmp_path, "3.9.1")
    assert deployments.fingerprint(tmp_path, "3.9.1") == first
    assert deployments.fingerprint(tmp_path, "3.9.2") != first
    (tmp_path / "prefect.yaml").write_text("name: y\n")
    assert deployments.fingerprint(tmp_path, "3.9.1") != first
    assert deployments.fingerprint(tmp_path / "another-checkout", "3.9.1") != first
    every = dict.fromkeys(deployments.DEPLOYMENTS, first)
    assert deployments.is_current(every, first)
    assert not deployments.is_current({**every, deployments.RECOVERY: None}, first)  # one is missing
    assert not deployments.is_current({**every, "deliverypipeline/aws": "0123"}, first)  # made from elsewhere
    assert not deployments.is_current({}, first)
