"""The pipeline's steps, named once: the task names in the Prefect UI, the report's rows, the README's table.

In the order a release runs them. `SWAP_BACK` runs only when the new prod is rejected.
"""

from __future__ import annotations

PREFLIGHT = "preflight"
RECOVER = "recover"
CHECKOUT = "checkout"
UNIT_TESTS = "unit tests"
BUILD_IMAGE = "build image"
SMOKE_TEST = "smoke test"
PUSH = "push"
LOCK_TARGET = "lock target"
RELEASE_BUNDLE = "release bundle"
PICK_PREPROD = "pick preprod"
DEPLOY = "deploy"
WAIT_UNTIL_READY = "wait until ready"
VERIFY_PREPROD = "verify preprod"
APPROVAL = "approval"
CANARY = "canary"
SWAP = "swap"
VERIFY_PROD = "verify prod"
ANALYSE_TRAFFIC = "analyse traffic"
SWAP_BACK = "swap back"

STEPS = (
    PREFLIGHT,
    RECOVER,
    CHECKOUT,
    UNIT_TESTS,
    BUILD_IMAGE,
    SMOKE_TEST,
    PUSH,
    LOCK_TARGET,
    RELEASE_BUNDLE,
    PICK_PREPROD,
    DEPLOY,
    WAIT_UNTIL_READY,
    VERIFY_PREPROD,
    APPROVAL,
    CANARY,
    SWAP,
    VERIFY_PROD,
    ANALYSE_TRAFFIC,
    SWAP_BACK,
)
