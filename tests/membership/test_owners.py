"""Run owners: a sweep that runs while a refresh takes its owner lock never makes that refresh
look dead (review finding: the lock file could be swept between its creation and its lock)."""

from __future__ import annotations

import os
from pathlib import Path

from segmenta.membership.owners import RunOwner, _reap, owner_alive, sweep


class SweptBeforeLocked(RunOwner):
    """An owner whose first lock file is swept after it is created and before it is locked,
    as another process's sweep (on open of the workspace) may do at that moment."""

    def __init__(self, workspace: Path) -> None:
        super().__init__(workspace)
        self.workspace = workspace
        self.swept: list[int] = []

    def _create(self) -> int:
        fd = super()._create()
        if not self.swept:
            self.swept.append(sweep(self.workspace))
        return fd


def test_an_owner_whose_lock_file_is_swept_before_it_is_locked_stays_alive(tmp_path: Path) -> None:
    owner = SweptBeforeLocked(tmp_path)
    with owner:
        assert owner.swept == [1]  # the sweep did remove the unlocked file
        assert owner_alive(tmp_path, owner.message)  # yet the running refresh is seen alive
        assert sweep(tmp_path) == 0 and owner.path.exists()
        assert owner_alive(tmp_path, owner.message)
    assert not owner_alive(tmp_path, owner.message)  # and dead once it lets go
    assert list((tmp_path / ".runs").iterdir()) == []


def test_a_sweep_holding_the_old_file_does_not_remove_the_file_its_owner_re_created(tmp_path: Path) -> None:
    owner = RunOwner(tmp_path)
    owner.path.parent.mkdir(parents=True)
    first = owner._create()
    late = os.open(owner.path, os.O_RDWR)  # a second sweep opened the first file before it was swept
    try:
        assert sweep(tmp_path) == 1
        assert not owner._lock(first)  # the owner sees its file is gone and creates another
        second = owner._create()
        assert owner._lock(second)
        owner._fd = second
        # the late sweep now locks the first file (nobody holds it) and must leave the path alone
        assert _reap(owner.path, late) is False
        assert owner.path.exists() and owner_alive(tmp_path, owner.message)
        owner.__exit__(None, None, None)
        assert not owner_alive(tmp_path, owner.message)
    finally:
        os.close(late)
