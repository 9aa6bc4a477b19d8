"""The flow's `config` parameter folded into one field, and the repository checked before a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema

from flows.config import PipelineConfig, check_repo, unfolded
from flows.errors import ConfigError
from flows.pipeline import pipeline


def test_the_run_form_lists_the_release_choices_first_and_the_config_as_one_field() -> None:
    schema = parameter_schema(pipeline.fn).model_dump()
    properties = schema["properties"]
    order = sorted(properties, key=lambda name: properties[name]["position"])
    assert order == ["repo", "ref", "require_approval", "notify_url", "config"]
    # Not in the form: the target is the deployment's own (one deployment per target), the pushed
    # ref the webhook's. Both are still accepted.
    assert {"target", "pushed_ref"}.isdisjoint(properties)
    given = pipeline.validate_parameters({"target": "swarm", "pushed_ref": "refs/heads/main"})
    assert given["target"] == "swarm" and given["pushed_ref"] == "refs/heads/main"
    with pytest.raises(ParameterTypeError, match=r"target: Input should be 'local', 'aws' or 'swarm'"):
        pipeline.validate_parameters({"target": "mars"})
    # One line of description where the name does not say it all; the form fits one screen.
    described = {name for name, field in properties.items() if field.get("description")}
    assert described == {"notify_url", "config"}
    assert all("\n" not in properties[name]["description"] for name in described)
    assert properties["config"]["anyOf"] == [{"type": "object"}, {"type": "null"}]
    assert schema["definitions"] == {}  # no PipelineConfig laid out field by field


def test_config_accepts_what_the_command_line_and_the_tests_pass() -> None:
    given = pipeline.validate_parameters({"config": {"traffic_steps": [10, 50], "deadlines": {"ready": 5}}})
    assert isinstance(given["config"], PipelineConfig)
    assert given["config"].traffic_steps == [10, 50] and given["config"].deadlines.ready == 5
    model = PipelineConfig(application="x")
    assert pipeline.validate_parameters({"config": model})["config"] == model
    assert unfolded(pipeline.validate_parameters({"config": None})["config"]) == PipelineConfig()


def test_an_invalid_setting_is_refused_before_the_run_starts_naming_it() -> None:
    with pytest.raises(ParameterTypeError, match=r"config\.traffic_steps: .*must increase"):
        pipeline.validate_parameters({"config": {"traffic_steps": [50, 10]}})


def test_a_missing_repository_path_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "deleted-clone"
    with pytest.raises(ConfigError, match=f"the repository '{missing}' does not exist on this machine"):
        check_repo(str(missing))
    check_repo(str(tmp_path))
    check_repo("https://github.com/owner/name.git")
    check_repo("git@github.com:owner/name.git")
