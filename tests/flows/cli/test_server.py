"""`deliverypipeline server env`: the server every entry point uses, as shell assignments."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from flows.cli.main import main


def assignments(text: str) -> dict[str, str]:
    pairs = (shlex.split(line)[0].split("=", 1) for line in text.splitlines())
    return {key: value for key, value in pairs}


def test_the_local_server_and_the_machines_state_dir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PORT", "4300")
    monkeypatch.setenv("DELIVERY_STATE_DIR", str(tmp_path / "state dir"))
    assert main(["server", "env"]) == 0
    assert assignments(capsys.readouterr().out) == {
        "PREFECT_API_URL": "http://127.0.0.1:4300/api",
        "PREFECT_UI_URL": "http://127.0.0.1:4300",
        "DELIVERY_STATE_DIR": str(tmp_path / "state dir"),  # quoted: a space survives the shell
    }


def test_a_teams_server_is_named_as_it_is(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "https://prefect.team.example/api")
    monkeypatch.setenv("PREFECT_UI_URL", "https://prefect.team.example")
    monkeypatch.delenv("DELIVERY_STATE_DIR", raising=False)
    assert main(["server", "env"]) == 0
    shown = assignments(capsys.readouterr().out)
    assert shown["PREFECT_API_URL"] == "https://prefect.team.example/api"
    assert shown["PREFECT_UI_URL"] == "https://prefect.team.example"
    assert shown["DELIVERY_STATE_DIR"].endswith("controlplane-prefect.team.example_https")
