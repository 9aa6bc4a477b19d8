from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flows.command import run_within


class Overdue(Exception):
    pass


def test_a_command_that_ends_in_time_gives_its_output_and_exit_code(tmp_path: Path) -> None:
    script = "import os, sys; print(os.getcwd()); print('oops', file=sys.stderr); sys.exit(3)"
    done = run_within([sys.executable, "-c", script], 30, Overdue("late"), cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (3, "oops")
    assert Path(done.stdout.strip()) == tmp_path.resolve()


def test_a_command_that_runs_over_raises_the_callers_error() -> None:
    with pytest.raises(Overdue, match="late") as raised:
        run_within([sys.executable, "-c", "import time; time.sleep(30)"], 0.3, Overdue("late"))
    assert raised.value.__cause__ is not None  # the timeout it stands for
