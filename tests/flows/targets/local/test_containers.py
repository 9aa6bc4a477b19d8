"""The environments' containers, planned: names, the shared store, registrations, run specifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.targets.local import containers
from flows.targets.local.containers import Registration
from flows.targets.local.plans import PlanError
from webapp.config import parse_config


def test_container_name_is_a_valid_unique_docker_name() -> None:
    assert (
        containers.container_name("deliverypipeline", "node-1", "1.4.0+g3f2a")
        == "deliverypipeline-node-1-1.4.0-g3f2a"
    )
    taken = ["app-node-1-v1", "app-node-1-v1-r2"]
    assert containers.container_name("app", "node-1", "v1", taken) == "app-node-1-v1-r3"


def test_default_store_config_is_what_the_webapp_reads() -> None:
    text = containers.store_config_text()
    assert text == '[store]\nkind = "sqlite"\npath = "/data/delivery.sqlite3"\n'
    parsed = parse_config(text, "/app/application.conf")
    assert (parsed.kind, str(parsed.path)) == ("sqlite", "/data/delivery.sqlite3")


def test_registration_from_dockerrun() -> None:
    bundle = {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": "127.0.0.1:5000/deliverypipeline:1.2.0", "Update": "true"},
        "Ports": [{"ContainerPort": "9000"}],
    }
    assert containers.registration_from_bundle("1.2.0", bundle) == Registration(
        "127.0.0.1:5000/deliverypipeline:1.2.0", 9000
    )
    assert containers.registration_from_bundle("1", {"Image": {"Name": "x:1"}}).container_port == 8080


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ({}, "no Image.Name"),
        ({"Image": "x"}, "no Image.Name"),
        ({"Image": {"Name": ""}}, "is empty"),
        ({"Image": {"Name": "x:1"}, "Ports": [{"ContainerPort": "http"}]}, "not a port"),
    ],
)
def test_registration_errors_name_the_field(bundle: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        containers.registration_from_bundle("1", bundle)


SPEC = {
    "application": "deliverypipeline",
    "environment": "node-2",
    "version": "1.2.0",
    "registration": Registration("127.0.0.1:5000/deliverypipeline:1.2.0", 8080),
    "name": "deliverypipeline-node-2-1.2.0",
    "store_config": Path("/state/store/application.conf"),
    "data_dir": Path("/state/data"),
    "state_dir": Path("/state"),
    "health_path": "/health",
}


def test_run_spec_mounts_the_shared_store_the_seed_way() -> None:
    spec = containers.run_spec(**SPEC, extra_labels={"deliverypipeline.test": "42"})  # type: ignore[arg-type]
    assert spec.docker_kwargs() == {
        "image": "127.0.0.1:5000/deliverypipeline:1.2.0",
        "name": "deliverypipeline-node-2-1.2.0",
        "hostname": "deliverypipeline-node-2-1.2.0",
        "labels": {
            "deliverypipeline.app": "deliverypipeline",
            "deliverypipeline.env": "node-2",
            "deliverypipeline.version": "1.2.0",
            "deliverypipeline.state_dir": "/state",
            "deliverypipeline.test": "42",
        },
        "environment": {"DELIVERY_CONF": "/app/application.conf"},
        "volumes": {
            "/state/store/application.conf": {"bind": "/app/application.conf", "mode": "ro"},
            "/state/data": {"bind": "/data", "mode": "rw"},
        },
        "ports": {"8080/tcp": ("127.0.0.1", None)},
        "healthcheck": {
            "test": [
                "CMD",
                "curl",
                "-fsS",
                "-o",
                "/dev/null",
                "--max-time",
                "2",
                "http://127.0.0.1:8080/health",
            ],
            "interval": 1_000_000_000,
            "timeout": 3_000_000_000,
            "retries": 3,
            "start_period": 60_000_000_000,
        },
        "detach": True,
    }


def test_a_container_gets_the_store_config_variable_and_nothing_of_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "6d3c1a4e-run")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    spec = containers.run_spec(**SPEC)  # type: ignore[arg-type]
    assert spec.docker_kwargs()["environment"] == {"DELIVERY_CONF": "/app/application.conf"}
    assert containers.container_environment() == {"DELIVERY_CONF": "/app/application.conf"}
