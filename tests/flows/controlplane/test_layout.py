"""Where the control plane lives, from the environment; bad settings are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.controlplane.layout import MACHINE_STATE_DIR, is_local_api, layout, machine_state_dir
from flows.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_defaults_are_the_local_server_under_the_machines_state_dir(tmp_path: Path) -> None:
    where = layout({"XDG_STATE_HOME": str(tmp_path)}, cwd=ROOT)
    machine = machine_state_dir({"XDG_STATE_HOME": str(tmp_path)})
    assert where.state_dir == machine and where.home == machine / "prefect"
    assert ROOT not in where.state_dir.parents  # never inside a checkout: deleting one loses nothing
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


def test_the_machines_state_dir_is_under_var_lib_when_writable_else_the_users(tmp_path: Path) -> None:
    system = tmp_path / "var" / "lib" / "deliverypipeline" / "controlplane"
    assert machine_state_dir({}, system) == system  # made there: its first existing parent is writable
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    users = machine_state_dir({"HOME": str(tmp_path / "home")}, blocked / "controlplane")
    assert users == tmp_path / "home" / ".local" / "state" / "deliverypipeline" / "controlplane"
    xdg = machine_state_dir({"XDG_STATE_HOME": str(tmp_path / "xdg")}, blocked / "controlplane")
    assert xdg == tmp_path / "xdg" / "deliverypipeline" / "controlplane"
    assert Path("/var/lib/deliverypipeline/controlplane") == MACHINE_STATE_DIR


def test_another_port_has_a_state_dir_and_database_of_its_own(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path)}
    default = layout(env, cwd=ROOT)
    other = layout({**env, "PREFECT_PORT": "4300"}, cwd=ROOT)
    assert other.state_dir == default.state_dir.with_name("controlplane-4300")
    assert other.database != default.database
    team = layout({**env, "PREFECT_API_URL": "https://user@team.example:4200/api"}, cwd=ROOT)
    assert team.state_dir == default.state_dir.with_name("controlplane-team.example_4200")  # no user name
