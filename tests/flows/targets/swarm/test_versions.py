"""The version book: pinned images and the deploy history retention reads (no registry)."""

from __future__ import annotations

import json
from pathlib import Path

from flows.targets.swarm.versions import VersionBook

IMAGE = "10.0.0.1:5000/app@sha256:" + "a" * 64


def test_the_history_keeps_each_version_once_most_recent_last(tmp_path: Path) -> None:
    book = VersionBook(tmp_path / "versions.json", "10.0.0.1:5000")
    for version in ("v1", "v2", "v1", "v3"):
        book.deployed(version)
    assert book.releases() == ["v2", "v1", "v3"]


def test_forgotten_versions_leave_the_book_and_the_history(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    path.write_text(json.dumps({"versions": {"v1": IMAGE, "v2": IMAGE}, "releases": ["v1", "v2"]}))
    book = VersionBook(path, "10.0.0.1:5000")
    book.forget({"v1": IMAGE})
    assert (book.read(), book.releases()) == ({"v2": IMAGE}, ["v2"])


def test_a_version_registered_again_with_another_image_is_not_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    other = IMAGE.replace("a" * 64, "b" * 64)
    path.write_text(json.dumps({"versions": {"v1": other}, "releases": ["v1"]}))
    book = VersionBook(path, "10.0.0.1:5000")
    book.forget({"v1": IMAGE})  # the image pruned was the one v1 had before
    assert (book.read(), book.releases()) == ({"v1": other}, ["v1"])


def test_a_book_of_versions_only_still_reads_with_no_history(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    path.write_text(json.dumps({"v1": IMAGE}))
    book = VersionBook(path, "10.0.0.1:5000")
    assert (book.pinned("v1"), book.releases()) == (IMAGE, [])
    book.deployed("v1")
    assert (book.read(), book.releases()) == ({"v1": IMAGE}, ["v1"])
