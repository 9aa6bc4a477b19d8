"""`deliverypipeline metrics`: the four keys as a table or JSON, with the runs behind each figure."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from flows.cli import metrics
from flows.cli.main import main
from flows.cli.metrics import as_json, as_table
from flows.metrics import history
from flows.metrics.dora import four_keys
from tests.flows.metrics.test_dora import HISTORY, NOW, RECOVERY


def url(run_id: str) -> str:
    return f"http://ui/runs/flow-run/{run_id}"


def test_the_table_shows_each_figure_its_elite_level_and_runs() -> None:
    table = as_table(four_keys(HISTORY, [RECOVERY], NOW, 7))
    lines = table.splitlines()
    assert lines[0] == "deliverypipeline on local, last 7 days"
    assert lines[1].split() == [
        "Deployment", "frequency", "3", "in", "7", "d", "(0.43/day)", "below", "elite",
        "elite:", "on", "demand", "(multiple", "deploys", "per", "day)",
    ]  # fmt: skip
    assert lines[2].split() == [
        "runs:",
        "deliverypipeline-a1,",
        "deliverypipeline-a2,",
        "deliverypipeline-a3",
    ]
    assert "left out: deliverypipeline-a3" in table  # its commit time is unknown
    assert "Change failure rate 40 % (2 of 5) below elite" in " ".join(table.split())
    assert "runs: deliverypipeline-b1, deliverypipeline-c1, recover deliverypipeline-c1" in table


def test_the_table_says_when_there_is_nothing_to_show() -> None:
    assert as_table([]) == "no release runs recorded in the window"


def test_json_links_every_figure_to_its_runs() -> None:
    (keys,) = json.loads(as_json(four_keys(HISTORY, [RECOVERY], NOW, 30), url))
    assert (keys["application"], keys["target"], keys["days"]) == ("deliverypipeline", "local", 30)
    rate = keys["change_failure_rate"]
    assert (rate["value"], rate["elite"], rate["elite_level"]) == (2 / 6, False, "0-15 % (about 5 %)")
    assert rate["runs"][-1] == {"id": "r1", "name": "recover deliverypipeline-c1", "url": url("r1")}
    assert keys["lead_time"]["left_out"] == [{"id": "a3", "name": "deliverypipeline-a3", "url": url("a3")}]


def test_the_command_reads_the_history_once_and_prints_both_windows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4999/api")
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)  # set in a flow run's environment
    asked: list[int] = []

    def read(api: Any, now: datetime, days: int) -> tuple[Any, Any]:
        asked.append(days)
        return HISTORY, [RECOVERY]

    monkeypatch.setattr(history, "read", read)
    monkeypatch.setattr(metrics, "now_utc", lambda: NOW)
    assert main(["metrics", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert asked == [30]
    assert [(k["target"], k["days"]) for k in shown] == [("local", 7), ("local", 30)]
    assert shown[0]["recovery_time"]["runs"][0]["url"] == "http://127.0.0.1:4999/runs/flow-run/b1"


def test_only_the_known_windows_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["metrics", "--days", "9"])
    assert exited.value.code == 2
    assert "invalid choice: 9" in capsys.readouterr().err
