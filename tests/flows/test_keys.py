"""Run names and cache keys: same inputs, same key; any changed input, a new key."""

from __future__ import annotations

from flows.keys import (
    build_inputs_hash,
    build_key,
    digest,
    initial_run_name,
    push_key,
    run_name,
    smoke_key,
    unit_tests_key,
)

COMMIT = "97af668c5253683dfb3547bca809ed5e15dbbee3"


def test_run_name_carries_version_and_commit() -> None:
    assert run_name("app", "v0.1.0-1-g97af668c", COMMIT) == "app-v0.1.0-1-g97af668c"
    assert run_name("app", "v1.0.0", COMMIT) == "app-v1.0.0@97af668c"
    assert initial_run_name("app", "main", COMMIT) == "app-97af668c"
    assert initial_run_name("app", "feature/x y", None) == "app-feature-x-y"


def test_digest_separates_parts() -> None:
    assert digest(["ab", "c"]) != digest(["a", "bc"])
    assert digest(["a"]) == digest(["a"])


def test_build_key_changes_with_each_input() -> None:
    inputs = build_inputs_hash("tree1", "base:1", "sha256:aaa")
    key = build_key(COMMIT, "v1", inputs, "reg/app")
    assert key == build_key(COMMIT, "v1", inputs, "reg/app")
    assert key.startswith("build-97af668c-")
    assert key != build_key(COMMIT, "v1", build_inputs_hash("tree1", "base:1", "sha256:bbb"), "reg/app")
    assert key != build_key(COMMIT, "v1", build_inputs_hash("tree2", "base:1", "sha256:aaa"), "reg/app")
    assert key != build_key(COMMIT, "v1", inputs, "other/app")


def test_step_keys_depend_on_their_inputs_only() -> None:
    assert unit_tests_key("tree", "3.11") == unit_tests_key("tree", "3.11")
    assert unit_tests_key("tree", "3.11") != unit_tests_key("tree2", "3.11")
    assert smoke_key("sha256:1", "v1") != smoke_key("sha256:2", "v1")
    assert push_key("reg/app:v1", "sha256:1") != push_key("reg2/app:v1", "sha256:1")
