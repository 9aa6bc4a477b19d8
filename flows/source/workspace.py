"""Work directories kept between runs: a run checks its commit out into a free slot of its repository.

A kept directory keeps what Python and pytest compiled (`__pycache__`) for the files the new
commit did not change (git rewrites only the files that differ, so their timestamps, and with
them the compiled files, stay valid): the unit-test step then compiles and rewrites only what
changed instead of the whole project on every run.

A run holds its slot with `flock` on `<slot>.lock` until it ends (`release`), and the kernel
frees it if the run dies, so concurrent runs of one repository take different slots. When every
slot is busy the run gets a fresh directory of its own, removed when it ends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from flows.flock import try_lock

SLOTS = 4
SLOT_DIR = "slots"
# Open lock files of the slots this process holds, by slot directory (kept open: closing frees it).
_HELD: dict[str, int] = {}


def slot_key(source: str) -> str:
    """A short, stable name for a repository (its path or URL)."""
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def take(root: Path, source: str, label: str, slots: int = SLOTS) -> Path:
    """A directory for a checkout of `source`: a free kept slot, held until `release`, or a fresh one.

    A slot may hold an earlier checkout (to be updated in place); a fresh directory does not exist yet.
    """
    slot_root = root / SLOT_DIR
    slot_root.mkdir(parents=True, exist_ok=True)
    key = slot_key(source)
    for number in range(slots):
        directory = slot_root / f"{key}-{number}"
        fd = os.open(f"{directory}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if not try_lock(fd):
            os.close(fd)
            continue
        _HELD[str(directory)] = fd
        return directory
    return root / f"{label}-{uuid.uuid4().hex[:8]}"


def release(directory: Path) -> None:
    """The run is done with `directory`: a slot is kept for the next run and freed; anything else removed."""
    fd = _HELD.pop(str(directory), None)
    if fd is None:
        shutil.rmtree(directory, ignore_errors=True)
        return
    os.close(fd)  # closing the lock file frees the flock
