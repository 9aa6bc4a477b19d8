"""The Elastic Beanstalk source bundle: the repo's Dockerrun.aws.json with the image filled in.

The template (version 1, single container, as the seed's) names its image
`"${IMAGE}:${VERSION}"`; `render_dockerrun` replaces `${IMAGE}` with the image's name
(registry/repository) and `${VERSION}` with its tag, like the seed's CI did with sed.
A template may also name `"${IMAGE}"` alone, which then receives the whole reference.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flows.image.errors import BundleError

IMAGE_PLACEHOLDER = "${IMAGE}"
VERSION_PLACEHOLDER = "${VERSION}"
DOCKERRUN_FILE = "Dockerrun.aws.json"


def split_image_ref(image_ref: str) -> tuple[str, str]:
    """`"reg:5000/app:v1"` -> `("reg:5000/app", "v1")`; the tag is required."""
    name, sep, tag = image_ref.rpartition(":")
    if not sep or not name or not tag or "/" in tag:
        raise BundleError(f"image reference {image_ref!r} needs an explicit tag (<name>:<tag>)")
    if "@" in image_ref:
        raise BundleError(f"image reference {image_ref!r}: Dockerrun v1 takes a tag, not a digest")
    return name, tag


def validate_template(template: Any) -> dict[str, Any]:
    """Check a Dockerrun.aws.json template; return it typed, or raise BundleError saying what is wrong."""
    if not isinstance(template, dict):
        raise BundleError(f"{DOCKERRUN_FILE} must be a JSON object, got {type(template).__name__}")
    if str(template.get("AWSEBDockerrunVersion")) != "1":
        raise BundleError(
            f'{DOCKERRUN_FILE}: "AWSEBDockerrunVersion" must be "1" (single container), '
            f"got {template.get('AWSEBDockerrunVersion')!r}"
        )
    image = template.get("Image")
    if not isinstance(image, dict) or not isinstance(image.get("Name"), str):
        example = f'"Image": {{"Name": "{IMAGE_PLACEHOLDER}:{VERSION_PLACEHOLDER}"}}'
        raise BundleError(f"{DOCKERRUN_FILE}: {example} is missing")
    if IMAGE_PLACEHOLDER not in image["Name"]:
        raise BundleError(
            f"{DOCKERRUN_FILE}: Image.Name {image['Name']!r} must contain the placeholder {IMAGE_PLACEHOLDER}"
        )
    ports = template.get("Ports")
    if not isinstance(ports, list) or not ports:
        raise BundleError(f'{DOCKERRUN_FILE}: "Ports" must be [{{"ContainerPort": "8080"}}]')
    for port in ports:
        if not isinstance(port, dict) or not str(port.get("ContainerPort", "")).isdigit():
            raise BundleError(f'{DOCKERRUN_FILE}: a "Ports" entry lacks a numeric "ContainerPort": {port!r}')
    volumes = template.get("Volumes", [])
    if not isinstance(volumes, list):
        raise BundleError(f'{DOCKERRUN_FILE}: "Volumes" must be a list')
    for volume in volumes:
        if not isinstance(volume, dict) or not all(
            str(volume.get(key, "")).startswith("/") for key in ("HostDirectory", "ContainerDirectory")
        ):
            raise BundleError(
                f'{DOCKERRUN_FILE}: each "Volumes" entry needs absolute "HostDirectory" and '
                f'"ContainerDirectory", got {volume!r}'
            )
    return template


def render_dockerrun(template: dict[str, Any], image_ref: str) -> dict[str, Any]:
    """A copy of `template` whose Image.Name is `image_ref` (placeholders filled). Pure."""
    validated = validate_template(template)
    name, tag = split_image_ref(image_ref)
    rendered = copy.deepcopy(validated)
    pattern = rendered["Image"]["Name"]
    if VERSION_PLACEHOLDER in pattern:
        filled = pattern.replace(IMAGE_PLACEHOLDER, name).replace(VERSION_PLACEHOLDER, tag)
    else:
        filled = pattern.replace(IMAGE_PLACEHOLDER, image_ref)
    if "${" in filled:
        raise BundleError(f"{DOCKERRUN_FILE}: Image.Name {pattern!r} has an unknown placeholder")
    rendered["Image"]["Name"] = filled
    return rendered


def load_dockerrun_template(path: Path) -> dict[str, Any]:
    """Read and validate the repo's Dockerrun.aws.json (a file, or a directory holding one)."""
    file = path / DOCKERRUN_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BundleError(f"cannot read {file}: {exc}") from exc
    except ValueError as exc:
        raise BundleError(f"{file} is not valid JSON: {exc}") from exc
    return validate_template(data)
