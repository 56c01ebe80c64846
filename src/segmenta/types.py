"""The contracts between segmenta's layers, in one place (as starlette's ``types.py``).

- :class:`MembershipStore`: where a saved segment's members and their history live, in the
  data engine beside the data (:mod:`segmenta.membership`); an engine picks its store with
  the ``Engine.membership_store`` hook.
- :class:`Changes`: what one write did; :class:`RunRecord`: what the membership commit of
  one refresh says about it (the membership's own truth, which the metadata store is
  reconciled with after a crash).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa  # only named in signatures: importing the contracts costs no pyarrow

#: The values of a history row's ``change`` (and of :meth:`MembershipStore.delta`'s).
ENTERED = "entered"
EXITED = "exited"


@dataclass(frozen=True)
class Changes:
    """What one membership write did: keys that entered, keys that exited, and the size after it."""

    entered: int
    exited: int
    size: int


@dataclass(frozen=True)
class RunRecord:
    """One committed refresh (or list change) as its membership commit recorded it."""

    run_id: int
    version: int | None
    at: dt.datetime
    size: int
    entered: int
    exited: int


@runtime_checkable
class EventLog(Protocol):
    """The membership events of a workspace, in offset order (one per key entering or leaving a segment).

    Rows: ``offset, segment_id, key`` (text), ``change, refresh_id, at, version, cause`` (JSON).
    """

    def last(self) -> int:
        """The last offset handed out (0: none yet)."""
        ...

    def read(self, *, after: int, segment_ids: list[int] | None, limit: int) -> pa.Table:
        """Up to ``limit`` committed events with an offset above ``after`` (of those segments only, if given)."""
        ...


@runtime_checkable
class MembershipStore(Protocol):
    """The stored membership of one saved segment (``key``: the audience's key column).

    Every write is one commit of the engine (all of it or nothing: a process killed part
    way leaves the previous membership), records who entered and exited in the history,
    and records the run (id, version, counts) in the same commit, so that the metadata store
    can always be brought back in line with the membership (:meth:`committed`).
    """

    @property
    def key(self) -> str:
        """The audience's key column."""
        ...

    @property
    def members(self) -> exp.Table:
        """The members as a table reference for SQL (one column, ``key``)."""
        ...

    def source(self) -> exp.Select:
        """The query of the members' keys (what ``in_segment`` reads)."""
        ...

    def ensure(self) -> None:
        """Create the (empty) membership if there is none yet."""
        ...

    def exists(self) -> bool: ...

    def replace(
        self,
        query: exp.Query,
        *,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None = None,
        cause: Mapping[str, Any] | None = None,
        within: exp.Query | None = None,
    ) -> Changes:
        """Make the members ``query``'s keys (an evaluation); ``within``: only among these keys."""
        ...

    def add(
        self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None, cause: Mapping[str, Any] | None = None
    ) -> Changes:
        """Add the keys of ``keys`` (a query of one key column)."""
        ...

    def remove(
        self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None, cause: Mapping[str, Any] | None = None
    ) -> Changes:
        """Remove the keys of ``keys`` (a query of one key column)."""
        ...

    def keys(self) -> list[Any]:
        """The members' keys, ascending."""
        ...

    def size(self) -> int: ...

    def contains(self, key: Any) -> bool: ...

    def changes(self, run_id: int) -> tuple[int, int]:
        """(entered, exited) of one committed run."""
        ...

    def committed(self, run_id: int) -> RunRecord | None:
        """What the membership recorded for run ``run_id``; None if that run never committed."""
        ...

    def latest(self) -> RunRecord | None:
        """The last committed run (the one the current members come from)."""
        ...

    def delta(self, run_id: int, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The keys that entered and exited in run ``run_id``: batches of (``key``, ``change``)."""
        ...

    def record_history(self, key: Any) -> list[dict[str, Any]]:
        """Every entry and exit of one record, oldest first (``at``, ``change``, ``version``, ``refresh_id``)."""
        ...
