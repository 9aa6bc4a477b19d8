"""Rendering and validating the Elastic Beanstalk Dockerrun.aws.json (pure)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from flows.image.bundle import load_dockerrun_template, render_dockerrun, split_image_ref
from flows.image.errors import BundleError

REPO = Path(__file__).parents[3]


def _template() -> dict[str, Any]:
    return load_dockerrun_template(REPO)


def test_repo_template_matches_the_eb_contract() -> None:
    template = _template()
    assert template["AWSEBDockerrunVersion"] == "1"
    assert template["Ports"] == [{"ContainerPort": "8080"}]
    assert {
        "HostDirectory": "/app/application.conf",
        "ContainerDirectory": "/app/application.conf",
    } in template["Volumes"]


def test_render_fills_name_and_version_and_leaves_the_template_alone() -> None:
    template = _template()
    before = copy.deepcopy(template)
    rendered = render_dockerrun(template, "127.0.0.1:5000/deliverypipeline:v1.2.0")
    assert rendered["Image"]["Name"] == "127.0.0.1:5000/deliverypipeline:v1.2.0"
    assert rendered["Ports"] == template["Ports"]
    assert template == before


def test_render_with_a_whole_reference_placeholder() -> None:
    template = _template()
    template["Image"]["Name"] = "${IMAGE}"
    assert render_dockerrun(template, "user/app:v3")["Image"]["Name"] == "user/app:v3"


def test_split_image_ref() -> None:
    assert split_image_ref("127.0.0.1:5000/app:v1") == ("127.0.0.1:5000/app", "v1")
    for bad in ("127.0.0.1:5000/app", "app", "app@sha256:" + "a" * 64):
        with pytest.raises(BundleError, match="tag"):
            split_image_ref(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.update(AWSEBDockerrunVersion="2"), 'must be "1"'),
        (lambda t: t.pop("Image"), "Image"),
        (lambda t: t["Image"].update(Name="fixed/app:v1"), "placeholder"),
        (lambda t: t.update(Ports=[]), "Ports"),
        (lambda t: t.update(Ports=[{"ContainerPort": "http"}]), "ContainerPort"),
        (
            lambda t: t.update(Volumes=[{"HostDirectory": "app.conf", "ContainerDirectory": "/app"}]),
            "absolute",
        ),
    ],
)
def test_invalid_templates_say_what_is_wrong(change: Any, message: str) -> None:
    template = _template()
    change(template)
    with pytest.raises(BundleError, match=message):
        render_dockerrun(template, "app:v1")


def test_unknown_placeholder_and_bad_json(tmp_path: Path) -> None:
    template = _template()
    template["Image"]["Name"] = "${IMAGE}:${VERSION}-${FLAVOUR}"
    with pytest.raises(BundleError, match="unknown placeholder"):
        render_dockerrun(template, "app:v1")
    (tmp_path / "Dockerrun.aws.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_dockerrun_template(tmp_path)
