"""`flows.config`: the one loader (TOML/JSON, overrides, ConfigError naming the file) and target defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.config import LOCAL_POLL_S, Deadlines, PipelineConfig, for_target, load_config
from flows.errors import ConfigError, DeliveryError
from flows.release.settings import AnalysisSettings

TOML = """
application = "shop"
prod_address = "127.0.0.1:9080"
traffic_steps = [10, 50]
[deadlines]
ready = 120
[local]
state_dir = "/srv/shop"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- reading a file ------------------------------------------------------------------------------


def test_no_file_and_no_overrides_is_the_default_configuration() -> None:
    assert load_config(None) == PipelineConfig()


def test_a_toml_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "pipeline.toml", TOML))
    assert (config.application, config.prod_address, config.preprod_address) == (
        "shop",
        "127.0.0.1:9080",
        "127.0.0.1:8081",  # unset: the default
    )
    assert config.traffic_steps == [10, 50]
    assert config.deadlines.ready == 120 and config.deadlines.verify == 60
    assert config.local.state_dir == Path("/srv/shop")


def test_a_json_file_and_any_other_suffix_is_json(tmp_path: Path) -> None:
    text = json.dumps({"environments": ["blue", "green"], "aws": {"region": "us-east-1"}})
    for name in ("pipeline.json", "pipeline.conf"):
        config = load_config(write(tmp_path, name, text))
        assert config.environments == ("blue", "green") and config.aws.region == "us-east-1"


def test_overrides_win_over_the_file_section_by_section(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline.toml", TOML)
    config = load_config(
        path, {"application": "other", "deadlines": {"verify": 5}, "local": {"state_dir": tmp_path}}
    )
    assert config.application == "other" and config.prod_address == "127.0.0.1:9080"
    assert config.deadlines.verify == 5 and config.deadlines.ready == 120  # the file's value stays
    assert config.local.state_dir == tmp_path


def test_none_overrides_are_options_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline.toml", TOML)
    config = load_config(path, {"application": None, "local": {"state_dir": None}, "aws": {"region": None}})
    assert config.application == "shop" and config.local.state_dir == Path("/srv/shop")
    assert config.aws.region == "eu-west-1"


def test_an_override_section_replaces_a_scalar_of_the_same_name() -> None:
    config = load_config(None, {"deadlines": {"ready": 7}, "verification": {"consistent_answers": 2}})
    assert config.deadlines.ready == 7 and config.verification.consistent_answers == 2


# --- what is wrong, and where -----------------------------------------------------------------


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="cannot read the configuration") as failure:
        load_config(path)
    assert str(path) in str(failure.value) and "No such file or directory" in str(failure.value)
    assert isinstance(failure.value, DeliveryError)


def test_a_directory_is_not_readable_either(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"cannot read the configuration {tmp_path}"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [("bad.toml", "application = ", "TOML"), ("bad.json", "{'application': 1", "JSON")],
)
def test_bad_syntax_is_a_config_error_naming_the_file_and_format(
    tmp_path: Path, name: str, text: str, kind: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=f"is not valid {kind}") as failure:
        load_config(path)
    assert str(failure.value).startswith(str(path))
    assert "a .toml file is read as TOML, others as JSON" in str(failure.value)


def test_json_that_is_not_an_object_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "list.json", "[1, 2]")
    with pytest.raises(ConfigError, match="must hold a table/object of PipelineConfig fields") as failure:
        load_config(path)
    assert str(path) in str(failure.value)


def test_an_invalid_value_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline.json", json.dumps({"environments": ["only-one"]}))
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    assert str(failure.value) == f"invalid configuration in {path}: environments.1: Field required"


def test_every_invalid_value_is_listed(tmp_path: Path) -> None:
    text = '[deadlines]\nready = "soon"\n[verification]\nconsistent_answers = 0\n'
    path = write(tmp_path, "pipeline.toml", text)
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    message = str(failure.value)
    assert "deadlines.ready:" in message and "verification.consistent_answers:" in message


def test_an_invalid_override_without_a_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^invalid configuration: deadlines.poll_interval"):
        load_config(None, {"deadlines": {"poll_interval": 0}})


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([50, 10], "traffic steps must increase"),
        ([10, 10], "traffic steps must increase"),
        ([0, 50], "traffic step 0 is not a share of 1..100 percent"),
        ([10, 101], "traffic step 101 is not a share of 1..100 percent"),
    ],
)
def test_bad_traffic_steps_are_rejected(tmp_path: Path, steps: list[int], message: str) -> None:
    path = write(tmp_path, "pipeline.json", json.dumps({"traffic_steps": steps}))
    with pytest.raises(ConfigError, match=f"in {path}: traffic_steps: .*{message}"):
        load_config(path)


@pytest.mark.parametrize("steps", [[], [100], [1, 50, 100], [25]])
def test_good_traffic_steps(steps: list[int]) -> None:
    assert load_config(None, {"traffic_steps": steps}).traffic_steps == steps


# --- target defaults ---------------------------------------------------------------------------


def test_aws_fills_what_is_unset() -> None:
    config = for_target(PipelineConfig(), "aws")
    assert config.deadlines.poll_s == 10.0 and config.deadlines.grace_s == 60.0
    assert config.analysis.window_s == 300.0
    assert (config.deadlines.poll_interval, config.deadlines.health_grace, config.analysis.window) == (
        10.0,
        60.0,
        300.0,
    )


def test_local_fills_what_is_unset() -> None:
    config = for_target(PipelineConfig(), "local")
    assert config.deadlines.poll_s == LOCAL_POLL_S and config.deadlines.grace_s == 0.0
    assert config.analysis.window_s == 10.0


def test_explicit_values_are_kept() -> None:
    given = PipelineConfig(
        deadlines=Deadlines(poll_interval=2, health_grace=0), analysis=AnalysisSettings(window=30)
    )
    config = for_target(given, "aws")
    assert config.deadlines.poll_s == 2 and config.deadlines.grace_s == 0 and config.analysis.window_s == 30
    assert config == given


def test_a_partly_set_section_gets_only_the_missing_defaults() -> None:
    config = for_target(PipelineConfig(deadlines=Deadlines(health_grace=5, ready=99)), "aws")
    assert config.deadlines.grace_s == 5 and config.deadlines.poll_s == 10.0 and config.deadlines.ready == 99


def test_filling_defaults_leaves_the_given_configuration_alone() -> None:
    given = PipelineConfig()
    for_target(given, "aws")
    assert given.deadlines.poll_interval is None and given.analysis.window is None
    assert given.deadlines.poll_s == LOCAL_POLL_S  # unresolved: the local default


def test_an_unknown_target_gets_no_defaults() -> None:
    given = PipelineConfig()
    assert for_target(given, "elsewhere") is given
