"""A command run to its end within a deadline: its output captured as text, an overrun the caller's error.

The commands whose overrun is a failure of its own (git checkouts and version reads, the unit
tests, pip downloads, HAProxy's check and start) run through `run_within`, so none can hang a run
and each overrun says, in its caller's words, what to look at.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any


def run_within(
    args: Sequence[str], seconds: float, overdue: Exception, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run `args` with stdout and stderr captured as text, whatever its exit code; `overdue` if it
    runs over `seconds`. `options` go to `subprocess.run` (e.g. `cwd`, `env`, `start_new_session`)."""
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=seconds, check=False, **options
        )
    except subprocess.TimeoutExpired as exc:
        raise overdue from exc
