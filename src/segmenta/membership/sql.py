"""Membership on a transactional SQL engine (DuckDB, PostgreSQL): tables beside the data.

In the engine's schema of segmenta's own (``Engine.meta_schema``), per segment (by id):

- ``members_<id>(<key>)``: the current members;
- ``history_<id>(<key>, change, refresh_id, at, version)``: one row per member that entered
  or exited, per run;

and per workspace ``segment_runs(segment_id, refresh_id, version, at, size, entered, exited,
seq)``: one row per committed run, written in the run's own transaction. It is how the
metadata store learns, after a crash between the two commits, that a run did commit.

A write runs in ONE engine transaction (:meth:`Engine.execute`): the changes
(:meth:`MembershipBase.delta_query`) go to a TEMP table, are appended to the history and
applied to the members (only the changes are written), and the run is recorded. Readers
see the old membership or the new, never a mix; a process killed part way leaves the
previous membership intact (the engine rolls the transaction back).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.errors import EngineError
from segmenta.membership.base import (
    HISTORY_COLUMNS,
    MembershipBase,
    counted,
    ident,
    key_data_type,
    key_literal,
    timestamp,
)
from segmenta.types import ENTERED, EXITED, Changes, RunRecord

if TYPE_CHECKING:
    import pyarrow as pa

RUNS = "segment_runs"
RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("segment_id", "BIGINT"),
    ("refresh_id", "BIGINT"),
    ("version", "INTEGER"),
    ("at", "TIMESTAMP"),
    ("size", "BIGINT"),
    ("entered", "BIGINT"),
    ("exited", "BIGINT"),
    ("seq", "BIGINT"),  # commit order within the segment (run ids are handed out before the work)
)


def _count(table: exp.Table | exp.Select) -> exp.Subquery:
    q = exp.select(exp.Count(this=exp.Star())).from_(table.copy()) if isinstance(table, exp.Table) else table
    return q.subquery()


@dataclass(frozen=True)
class SqlMembership(MembershipBase):
    """The stored membership of one segment in SQL tables of the data engine."""

    # -- names ------------------------------------------------------------------

    def _table(self, name: str) -> exp.Table:
        return exp.Table(this=ident(name), db=ident(self.engine.meta_schema))

    @property
    def members(self) -> exp.Table:
        return self._table(f"members_{self.segment_id}")

    @property
    def history(self) -> exp.Table:
        return self._table(f"history_{self.segment_id}")

    @property
    def runs(self) -> exp.Table:
        return self._table(RUNS)

    # -- schema ------------------------------------------------------------------

    def _create(self, table: exp.Table, columns: Sequence[tuple[str, str | exp.DataType]]) -> exp.Create:
        defs = [exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t)) for c, t in columns]
        return exp.Create(this=exp.Schema(this=table.copy(), expressions=defs), kind="TABLE", exists=True)

    def ensure_statements(self) -> list[exp.Expr]:
        """CREATE SCHEMA / TABLE IF NOT EXISTS for this segment's tables and the runs."""
        key = (self.key, key_data_type(self.key_type))
        return [
            exp.Create(this=exp.Table(this=ident(self.engine.meta_schema)), kind="SCHEMA", exists=True),
            self._create(self.members, [key]),
            self._create(self.history, [key, *HISTORY_COLUMNS]),
            self._create(self.runs, RUN_COLUMNS),
        ]

    def ensure(self) -> None:
        """Create this segment's (empty) tables if they do not exist yet."""
        self._ensure_shared()
        self.engine.execute(self.ensure_statements())

    def _ensure_shared(self) -> None:
        """The schema and the runs table, in a transaction of their own before a write's.

        Two first writes at once (of different segments, on a server) may both try to create
        them; one then fails on the catalogue's unique index, and a second try finds them there.
        """
        statements = self.ensure_statements()[:1] + self.ensure_statements()[-1:]
        try:
            self.engine.execute(statements)
        except EngineError:
            self.engine.execute(statements)

    def _tables(self) -> set[str]:
        q = (
            exp.select("table_name")
            .from_(exp.Table(this=ident("tables"), db=ident("information_schema")))
            .where(exp.column("table_schema").eq(exp.Literal.string(self.engine.meta_schema)))
        )
        return {r["table_name"] for r in self.engine.run(q).to_pylist()}

    def exists(self) -> bool:
        return f"members_{self.segment_id}" in self._tables()

    # -- writing -------------------------------------------------------------------

    def _write(
        self,
        op: str,
        keys: exp.Query,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None,
    ) -> Changes:
        """One transaction: only the delta (a TEMP table) is materialised, so a refresh that changes little writes little."""
        delta = exp.Table(this=ident(f"__segmenta_delta_{self.segment_id}"))
        temp = exp.Properties(expressions=[exp.TemporaryProperty()])
        statements: list[exp.Expr] = [
            *self._serialised(),
            *self.ensure_statements(),
            exp.Drop(tables=[delta.copy()], kind="TABLE", exists=True),
            exp.Create(this=delta.copy(), kind="TABLE", expression=self.delta_query(op, keys), properties=temp),
            exp.insert(self.history_rows(delta, run_id=run_id, at=at, version=version), self.history.copy()),
            exp.delete(self.members.copy(), where=exp.In(this=self._key(), query=self.of_change(delta, EXITED).subquery())),
            exp.insert(self.of_change(delta, ENTERED), self.members.copy()),
            exp.insert(self._run_row(delta, run_id, at, version), self.runs.copy()),
            exp.Drop(tables=[delta.copy()], kind="TABLE"),
        ]
        self._ensure_shared()
        self.engine.execute(statements, before_commit=before_commit)
        record = self.committed(run_id)
        assert record is not None, f"run {run_id} of segment {self.segment_id} committed no record"
        return Changes(record.entered, record.exited, record.size)

    def _serialised(self) -> list[exp.Expr]:
        """What makes concurrent writes of this segment take turns, first in their transaction.

        On PostgreSQL (READ COMMITTED) two writes at once would each see the other's work
        uncommitted: both would number their run ``MAX(seq) + 1`` (so ``latest()`` could not
        tell them apart) and both compute their changes against the same old members. A
        transaction-level advisory lock per segment makes the second wait until the first has
        committed (it is let go at commit or rollback, a crash included). DuckDB has one writer.
        """
        if self.engine.dialect != "postgres":
            return []
        lock = exp.Anonymous(this="pg_advisory_xact_lock", expressions=[exp.Literal.number(self._lock_id())])
        return [exp.select(lock)]

    def _lock_id(self) -> int:
        """The advisory lock number of this segment's membership (within the engine's meta schema)."""
        digest = hashlib.sha256(f"segmenta membership {self.engine.meta_schema} {self.segment_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _run_row(self, delta: exp.Table, run_id: int, at: dt.datetime, version: int | None) -> exp.Select:
        """The run's record, counted inside its own transaction (after the members are updated)."""
        previous = exp.select(exp.func("COALESCE", exp.func("MAX", exp.column("seq")), exp.Literal.number(0))).from_(
            self.runs.copy()
        )
        return exp.select(
            exp.cast(exp.Literal.number(self.segment_id), "BIGINT"),
            exp.cast(exp.Literal.number(run_id), "BIGINT"),
            exp.cast(exp.Null() if version is None else exp.Literal.number(version), "INTEGER"),
            timestamp(at),
            _count(self.members),
            _count(self._changed(delta, ENTERED)),
            _count(self._changed(delta, EXITED)),
            exp.Add(this=_count(previous.where(self._this_segment())), expression=exp.Literal.number(1)),
        )

    def _changed(self, delta: exp.Table, change: str) -> exp.Select:
        return (
            exp.select(exp.Count(this=exp.Star())).from_(delta.copy()).where(exp.column("change").eq(exp.Literal.string(change)))
        )

    def _this_segment(self) -> exp.Expr:
        return exp.column("segment_id").eq(exp.Literal.number(self.segment_id))

    # -- reading -----------------------------------------------------------------------

    def _records(self, where: exp.Expr | None, *, latest: bool = False) -> list[RunRecord]:
        if RUNS not in self._tables():
            return []
        q = (
            exp.select("refresh_id", "version", "at", "size", "entered", "exited")
            .from_(self.runs.copy())
            .where(self._this_segment())
        )
        if where is not None:
            q = q.where(where)
        if latest:
            q = q.order_by(exp.Ordered(this=exp.column("seq"), desc=True)).limit(1)
        return [
            RunRecord(
                run_id=int(r["refresh_id"]),
                version=r["version"],
                at=r["at"],
                size=int(r["size"]),
                entered=int(r["entered"]),
                exited=int(r["exited"]),
            )
            for r in self.engine.run(q).to_pylist()
        ]

    def committed(self, run_id: int) -> RunRecord | None:
        found = self._records(exp.column("refresh_id").eq(exp.Literal.number(run_id)))
        return found[0] if found else None

    def latest(self) -> RunRecord | None:
        found = self._records(None, latest=True)
        return found[0] if found else None

    def keys(self) -> list[Any]:
        """The members' keys, ascending (empty if never evaluated)."""
        if not self.exists():
            return []
        return self.engine.run(self._keys_of(self.members).order_by(self._key())).column(0).to_pylist()

    def size(self) -> int:
        if not self.exists():
            return 0
        return int(self.engine.run(exp.select(exp.Count(this=exp.Star())).from_(self.members.copy())).column(0)[0].as_py())

    def changes(self, run_id: int) -> tuple[int, int]:
        """(entered, exited) counts of one run (from its record, else counted in the history)."""
        record = self.committed(run_id)
        if record is not None:
            return record.entered, record.exited
        if not self.exists():
            return 0, 0
        return counted(self.engine.run(self.count_changes(self._run_history(run_id))))

    def _run_history(self, run_id: int) -> exp.Select:
        return (
            exp.select(self._key(), exp.column("change"))
            .from_(self.history.copy())
            .where(exp.column("refresh_id").eq(exp.Literal.number(run_id)))
        )

    def delta(self, run_id: int, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The keys that entered and exited in run ``run_id``: batches of (key, change), entered first, by key."""
        if not self.exists():
            return iter(())
        q = self._run_history(run_id).order_by(exp.column("change"), self._key())
        return self.engine.stream(q, batch_size=batch_size)

    def record_history(self, key: Any) -> list[dict[str, Any]]:
        """Every entry and exit of one record, oldest first."""
        if not self.exists():
            return []
        q = (
            exp.select("at", "change", "version", "refresh_id")
            .from_(self.history.copy())
            .where(self._key().eq(key_literal(key)))
            .order_by("refresh_id", "at")
        )
        return self.engine.run(q).to_pylist()

    def contains(self, key: Any) -> bool:
        if not self.exists():
            return False
        q = exp.select(exp.Count(this=exp.Star())).from_(self.members.copy()).where(self._key().eq(key_literal(key)))
        return bool(self.engine.run(q).column(0)[0].as_py())
