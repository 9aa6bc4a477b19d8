"""The services' exact specs: global, host network, pinned image, rollback on failure, our labels."""

from __future__ import annotations

import pytest

from flows.targets.swarm.services import (
    ServicePlanError,
    default_store_text,
    owned,
    pinned,
    service_spec,
    store_config,
)

DIGEST = "sha256:" + "a" * 64
IMAGE = f"10.231.0.1:5000/app@{DIGEST}"
LABELS = {
    "deliverypipeline.app": "app",
    "deliverypipeline.env": "node-1",
    "deliverypipeline.version": "v2",
    "deliverypipeline.owner": "swarm",
}


def test_the_spec_is_exactly_the_environment() -> None:
    store = store_config("app", default_store_text())
    spec = service_spec(
        application="app",
        environment="node-1",
        version="v2",
        image=IMAGE,
        port=9081,
        health_path="/health",
        store=store,
        store_config_id="cfg1",
    )
    second = 1_000_000_000
    assert spec == {
        "Name": "app-node-1",
        "Labels": LABELS,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Labels": LABELS,
                "Env": ["PORT=9081", "HOST=0.0.0.0", "DELIVERY_CONF=/app/application.conf"],
                "Healthcheck": {
                    "Test": [
                        "CMD",
                        "curl",
                        "-fsS",
                        "-o",
                        "/dev/null",
                        "--max-time",
                        "2",
                        "http://127.0.0.1:9081/health",
                    ],
                    "Interval": second,
                    "Timeout": 3 * second,
                    "Retries": 5,
                    "StartPeriod": 60 * second,
                },
                "Configs": [
                    {
                        "File": {"Name": "/app/application.conf", "UID": "0", "GID": "0", "Mode": 0o444},
                        "ConfigID": "cfg1",
                        "ConfigName": store.name,
                    }
                ],
                "Mounts": [{"Type": "volume", "Source": "app-data", "Target": "/app/data"}],
                "StopGracePeriod": 10 * second,
            },
            "Networks": [{"Target": "host"}],
            "RestartPolicy": {"Condition": "any", "Delay": second},
        },
        "Mode": {"Global": {}},
        "UpdateConfig": {
            "Parallelism": 0,
            "Delay": 0,
            "FailureAction": "rollback",
            "Monitor": second // 4,
            "MaxFailureRatio": 0,
            "Order": "stop-first",
        },
        "RollbackConfig": {
            "Parallelism": 0,
            "FailureAction": "pause",
            "Monitor": 5 * second,
            "Order": "stop-first",
        },
    }


def test_an_image_not_pinned_by_digest_is_refused() -> None:
    with pytest.raises(ServicePlanError, match="not pinned by digest"):
        service_spec(
            application="app",
            environment="node-1",
            version="v2",
            image="10.231.0.1:5000/app:v2",
            port=9081,
            health_path="/health",
            store=store_config("app", "x"),
            store_config_id="c",
        )
    assert pinned("10.231.0.1:5000", "app", DIGEST) == IMAGE
    with pytest.raises(ServicePlanError):
        pinned("10.231.0.1:5000", "app", "sha256:short")


def test_only_our_labels_make_a_service_ours() -> None:
    assert owned(LABELS, "app", "node-1")
    assert not owned({**LABELS, "deliverypipeline.owner": "someone"}, "app", "node-1")
    assert not owned({}, "app", "node-1")
    assert not owned(LABELS, "app", "node-2")


def test_a_new_store_text_is_a_new_config_name() -> None:
    assert store_config("app", "a").name != store_config("app", "b").name
    assert store_config("app", "a").name.startswith("app-store-")
