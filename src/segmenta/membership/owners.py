"""Who is running a refresh: one ``flock``-ed file per run, so that a crashed owner is seen at once.

A refresh takes its owner lock *before* its run is recorded as ``running`` and lets go
only after the run is finished in the metadata store. The kernel drops the lock when the
process dies, however it dies (SIGKILL included), so "the lock is free" means "nobody is
working on this run any more": its membership either committed (the run is finished from
the membership's record) or it did not (the run was interrupted). A run carries its owner
in its ``message`` while it runs: ``running in process <pid> on <host> (owner <token>)``.

The lock files live in the workspace (``.runs/``), so liveness is known to the processes
of one host; a run owned by another host is left to that host.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import uuid
from pathlib import Path
from types import TracebackType

RUNS_DIR = ".runs"
_OWNER = re.compile(r"on (?P<host>\S+) \(owner (?P<token>[0-9a-f]{32})\)$")


class RunOwner:
    """The lock of one run, held while the run is worked on (a context manager)."""

    def __init__(self, workspace: Path) -> None:
        self.token = uuid.uuid4().hex
        self.path = Path(workspace) / RUNS_DIR / f"{self.token}.lock"
        self._fd: int | None = None

    @property
    def message(self) -> str:
        """What a running run says about its owner (parsed back by :func:`owner_state`)."""
        return f"running in process {os.getpid()} on {socket.gethostname()} (owner {self.token})"

    def __enter__(self) -> RunOwner:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            fd = self._create()
            if self._lock(fd):
                self._fd = fd
                return self

    def _create(self) -> int:
        """Open (creating) the lock file; not locked yet, so a :func:`sweep` may remove it now."""
        return os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)

    def _lock(self, fd: int) -> bool:
        """Lock ``fd``; False (``fd`` closed) when the file was swept away before the lock was taken.

        A sweep that locks the file between its creation and this lock unlinks it: the lock
        then holds a file nobody can find, and the owner would look dead. Only whoever holds
        the lock on the file the path names unlinks the path, so once locked and still named
        by the path, the file stays.
        """
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _names(self.path, fd):
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return False

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not unlinked, not replaced)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_ino, named.st_dev) == (held.st_ino, held.st_dev)


def _reap(path: Path, fd: int) -> bool | None:
    """None while the owner of the lock file open as ``fd`` is at work; else unlink it: True if this call did.

    The path is unlinked only while its own file is locked here, so a file its owner
    re-created after an earlier sweep (see :meth:`RunOwner._lock`) is never removed.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None
    try:
        if not _names(path, fd):
            return False  # swept already (and maybe re-created by its owner: that file is not ours)
        path.unlink()  # the owner died holding it: nobody else will remove it
        return True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def owner_alive(workspace: Path, message: str | None) -> bool:
    """Whether the owner named in a running run's ``message`` still holds its lock.

    A run without an owner (written before owners were recorded) has none alive. A run
    owned by another host counts as alive: only that host can tell.
    """
    found = _OWNER.search(message or "")
    if found is None:
        return False
    if found["host"] != socket.gethostname():
        return True
    path = Path(workspace) / RUNS_DIR / f"{found['token']}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        return _reap(path, fd) is None
    finally:
        os.close(fd)


def sweep(workspace: Path) -> int:
    """Remove the lock files of owners that died (e.g. killed before their run was recorded); returns how many."""
    removed = 0
    for path in (Path(workspace) / RUNS_DIR).glob("*.lock"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            if _reap(path, fd):
                removed += 1
        finally:
            os.close(fd)
    return removed
