"""`processes`: reading what this host runs (no process is started or signalled here)."""

from __future__ import annotations

import os

from flows.controlplane.processes import environment_value, running


def test_a_processs_environment_is_read_from_the_host() -> None:
    # /proc shows the environment the process started with, not later changes: use an inherited one
    assert environment_value(os.getpid(), "PATH") == os.environ["PATH"]
    assert environment_value(os.getpid(), "DELIVERYPIPELINE_NO_SUCH_VARIABLE") is None
    assert environment_value(2**22 + 1, "PATH") is None  # beyond any pid: gone


def test_no_worker_runs_for_an_address_nothing_serves() -> None:
    assert running("worker", "http://127.0.0.1:9/api") == []
