"""Holding a lease around a block: renewed while held, freed after, a lost lease raised at the end."""

from __future__ import annotations

import pytest

from flows.targets.renewal import hold


class Lease:
    """A taken lease recording what is done with it."""

    def __init__(self, lost_while_held: str | None = None) -> None:
        self.lost: str | None = None
        self.lost_while_held = lost_while_held
        self.done: list[str] = []

    def start_renewing(self, log: object) -> None:
        self.done.append("renewing")

    def release(self, log: object) -> None:
        self.lost = self.lost_while_held
        self.done.append("released")


class Lost(Exception):
    pass


def test_a_kept_lease_is_renewed_then_released() -> None:
    lease = Lease()
    with hold(lambda: lease, print, Lost) as held:
        assert held is lease and lease.done == ["renewing"]
    assert lease.done == ["renewing", "released"]


def test_a_lease_lost_while_held_fails_the_block_with_the_targets_error() -> None:
    lease = Lease(lost_while_held="another run took it over")
    with pytest.raises(Lost, match="another run took it over"), hold(lambda: lease, print, Lost):
        pass
    assert lease.done == ["renewing", "released"]


def test_a_failing_block_still_releases_and_its_own_error_wins() -> None:
    lease = Lease()
    with pytest.raises(KeyError), hold(lambda: lease, print, Lost):
        raise KeyError("boom")
    assert lease.done == ["renewing", "released"]
