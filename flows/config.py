"""The pipeline's configuration: one typed model, folded into one field of the Prefect UI's Run form.

Defaults describe the embedded local target; `aws` settings are needed only for `target="aws"`.
The flow's `config` parameter is `FoldedConfig`: Prefect validates what it is given (a
`PipelineConfig`, or a dict of only the settings that differ, as the command line sends) into a
`PipelineConfig` before the run starts, naming each invalid setting, while the form shows one JSON
field instead of every setting laid out (a form several screens tall, its Submit button at the
bottom).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, WithJsonSchema, field_validator

from flows.errors import ConfigError
from flows.release.settings import AnalysisSettings, VerificationSettings, validate_traffic_steps
from flows.targets.aws.settings import AwsSettings
from flows.targets.local.settings import LocalSettings
from flows.targets.swarm.settings import SwarmSettings

LOCAL_POLL_S = 1.0


class Deadlines(BaseModel):
    """How long each wait may last, in seconds; each failure message names the deadline."""

    unit_tests: float = 600
    build: float = 900
    smoke_test: float = 60
    push: float = 300
    preprod_free: float = 600  # preprod busy with another update
    ready: float = 600  # after deploy: Ready, accepted health, new version
    verify: float = 60  # HTTP checks through an address (DNS may lag on aws)
    swap: float = 600  # both environments Ready before a swap, and again after it
    target_lock: float = 3600  # another release or manual operation holds the target: wait for it
    # None: the target's default (see TARGET_DEFAULTS): local 1 s / 0 s, aws 10 s / 60 s
    poll_interval: float | None = Field(default=None, gt=0)  # between two looks at a target or an address
    health_grace: float | None = Field(
        default=None, ge=0
    )  # a Ready environment may show a bad health this long

    @property
    def poll_s(self) -> float:
        """Seconds between two looks (the local default until `for_target` resolved it)."""
        return self.poll_interval if self.poll_interval is not None else LOCAL_POLL_S

    @property
    def grace_s(self) -> float:
        """Seconds a Ready environment may show an unaccepted health before the step fails."""
        return self.health_grace if self.health_grace is not None else 0.0


class PipelineConfig(BaseModel):
    """Everything a release needs to know besides the repository and commit."""

    application: str = "deliverypipeline"
    environments: tuple[str, str] = ("node-1", "node-2")
    prod_address: str = "127.0.0.1:8080"  # aws: the prod CNAME prefix
    preprod_address: str = "127.0.0.1:8081"  # aws: the preprod CNAME prefix
    registry: str = "127.0.0.1:5000"
    image_repository: str = "deliverypipeline"
    base_image: str = "deliverypipeline/base:bookworm-py311"
    accepted_health: list[str] = Field(default_factory=lambda: ["Green"])
    deadlines: Deadlines = Field(default_factory=Deadlines)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    # Canary: shares of prod traffic (percent, increasing) sent to the new version before the swap,
    # each judged by the analysis; e.g. [10, 50]. Empty: a plain blue/green swap. Local target only.
    traffic_steps: list[int] = Field(default_factory=list)
    local: LocalSettings = Field(default_factory=LocalSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)

    @field_validator("traffic_steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        return validate_traffic_steps(value)

    @property
    def image(self) -> str:
        """The image name in the registry, without a tag."""
        return f"{self.registry}/{self.image_repository}" if self.registry else self.image_repository


CONFIG_HELP = (
    "Only the settings that differ from the defaults, as JSON, e.g. "
    '{"traffic_steps": [10, 50], "deadlines": {"ready": 300}}; empty: the defaults. '
    "The settings are PipelineConfig's (flows/config.py); an invalid one stops the run before it "
    "starts, naming it."
)

# The flow's `config` parameter: validated into a PipelineConfig (None: the defaults), shown as one
# JSON field of the Run form.
FoldedConfig = Annotated[
    PipelineConfig | None,
    WithJsonSchema(
        {"anyOf": [{"type": "object"}, {"type": "null"}], "title": "config", "description": CONFIG_HELP}
    ),
]


def unfolded(config: PipelineConfig | None) -> PipelineConfig:
    """The run's configuration from the `config` parameter: the defaults when none was given."""
    return config if config is not None else PipelineConfig()


def check_repo(repo: str) -> None:
    """Refuse a `repo` that names a local path missing on this machine (a URL is the checkout's to
    reach): a ConfigError naming the path, before anything is built or touched."""
    scp_like = ":" in repo and "@" in repo.split(":", 1)[0]  # git@github.com:owner/name.git
    if "://" in repo or scp_like or Path(repo).is_dir():
        return
    raise ConfigError(
        f"the repository {repo!r} does not exist on this machine (the parameter `repo`); give the path "
        "of a git checkout here or a URL git can clone, e.g. run again with --repo PATH"
    )


# What suits each target where the configuration leaves a value unset (None): EB is polled every
# ~10 s (its describe calls are rate-limited) and reports a brief Yellow while it settles.
TARGET_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "local": {
        "deadlines": {"poll_interval": LOCAL_POLL_S, "health_grace": 0.0},
        "analysis": {"window": 10.0},
    },
    "aws": {"deadlines": {"poll_interval": 10.0, "health_grace": 60.0}, "analysis": {"window": 300.0}},
    "swarm": {"deadlines": {"poll_interval": 0.5, "health_grace": 0.0}, "analysis": {"window": 10.0}},
}


def for_target(config: PipelineConfig, target: str) -> PipelineConfig:
    """`config` with every value it leaves unset filled with `target`'s default."""
    updates: dict[str, BaseModel] = {}
    for section, defaults in TARGET_DEFAULTS.get(target, {}).items():
        current: BaseModel = getattr(config, section)
        unset = {key: value for key, value in defaults.items() if getattr(current, key) is None}
        if unset:
            updates[section] = current.model_copy(update=unset)
    return config.model_copy(update=updates) if updates else config


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """The one config loader of every command: a TOML (`.toml`) or JSON file, then overrides.

    `overrides` are nested like the model (`{"local": {"state_dir": ...}}`) and win over the
    file; None values are ignored (an option not given). Any problem is a `ConfigError` naming
    the file and what to fix.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration {path}: {exc.strerror or exc}") from exc
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        try:
            loaded = tomllib.loads(text) if kind == "TOML" else json.loads(text)
        except ValueError as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
            raise ConfigError(
                f"{path} is not valid {kind} ({exc}); a .toml file is read as TOML, others as JSON"
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a table/object of PipelineConfig fields")
        data = loaded
    _merge(data, overrides or {})
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        where = f" in {path}" if path is not None else ""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"invalid configuration{where}: {problems}") from exc


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict):
            section = data.get(key)
            data[key] = section if isinstance(section, dict) else {}
            _merge(data[key], value)
        else:
            data[key] = value
