"""Where the control plane lives, from the environment; bad settings are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.controlplane.layout import is_local_api, layout
from flows.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_are_the_local_server_under_the_checkouts_state_dir() -> None:
    where = layout({}, cwd=ROOT)
    assert where.state_dir == ROOT / ".state" and where.home == ROOT / ".state" / "prefect"
    assert (where.api_url, where.ui_url, where.external) == (
        "http://127.0.0.1:4200/api",
        "http://127.0.0.1:4200",
        False,
    )
    assert where.run_url("abc") == "http://127.0.0.1:4200/runs/flow-run/abc"


def test_an_api_url_naming_the_local_port_is_still_the_local_control_plane(tmp_path: Path) -> None:
    env = {
        "PREFECT_API_URL": "http://localhost:4300/api/",
        "PREFECT_PORT": "4300",
        "DELIVERY_STATE_DIR": str(tmp_path),
    }
    where = layout(env, cwd=ROOT)
    assert not where.external and where.api_url == "http://127.0.0.1:4300/api" and where.state_dir == tmp_path


def test_another_api_url_is_used_as_it_is_never_started() -> None:
    where = layout({"PREFECT_API_URL": "http://prefect.example:4200/api"}, cwd=ROOT)
    assert where.external and where.api_url == "http://prefect.example:4200/api"
    assert where.ui_url == "http://prefect.example:4200"


def test_children_get_this_control_plane_and_no_telemetry(tmp_path: Path) -> None:
    env = layout({"DELIVERY_STATE_DIR": str(tmp_path)}, cwd=ROOT).env(
        {"PATH": "/bin", "PREFECT_API_KEY": "x"}
    )
    assert env["PREFECT_HOME"] == str(tmp_path / "prefect")
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_SERVER_EPHEMERAL_ENABLED"] == "false"


@pytest.mark.parametrize("value", ["http", "0", "70000"])
def test_a_bad_port_is_one_line_saying_what_is_allowed(value: str) -> None:
    with pytest.raises(ConfigError, match=r"PREFECT_PORT=.* is not a port number: set it to 1..65535"):
        layout({"PREFECT_PORT": value}, cwd=ROOT)


def test_local_api_detection() -> None:
    assert is_local_api("http://127.0.0.1:4200/api", 4200)
    assert not is_local_api("http://127.0.0.1:4201/api", 4200)
    assert not is_local_api("http://10.0.0.1:4200/api", 4200)
    assert not is_local_api("http://127.0.0.1:notaport/api", 4200)
