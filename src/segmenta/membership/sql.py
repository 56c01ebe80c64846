"""Membership on a transactional SQL engine (DuckDB, PostgreSQL): tables beside the data.

In the engine's schema of segmenta's own (``Engine.meta_schema``), per segment (by id):

- ``members_<id>(<key>)``: the current members;

and per workspace:

- ``events(log_offset, segment_id, key, change, refresh_id, at, version, cause)``: the membership
  events of every segment, one row per key that entered or exited, numbered by ``log_offset``
  (strictly increasing over the workspace). They are the membership history too;
- ``event_offset(id, last)``: one row, the last offset handed out;
- ``segment_runs(segment_id, refresh_id, version, at, size, entered, exited, seq)``: one row
  per committed run. It is how the metadata store learns, after a crash between the two
  commits, that a run did commit.

A write runs in ONE engine transaction (:meth:`Engine.execute`): the changes
(:meth:`MembershipBase.delta_query`) go to a TEMP table, are applied to the members (only
the changes are written), the run is recorded, and the changes are appended to the event log
with the next offsets. Readers see the old membership and its events or the new, never a
mix; a process killed part way leaves the previous membership intact and no event of the
write (the engine rolls the transaction back). Offsets are taken last, from the one
``event_offset`` row, which writers update in turn (a row lock on PostgreSQL, the engine's
one writer on DuckDB): offsets commit in their order, so a reader that has seen offset N
never later finds an event numbered below N.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.errors import EngineError
from segmenta.membership.base import (
    EVENT_COLUMNS,
    MembershipBase,
    Write,
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
EVENTS = "events"
EVENT_OFFSET = "event_offset"
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


def _meta_table(engine: Any, name: str) -> exp.Table:
    return exp.Table(this=ident(name), db=ident(engine.meta_schema))


def _has_table(engine: Any, name: str) -> bool:
    """Whether the engine's meta schema holds ``name`` (a table once seen is remembered: segmenta drops none of them).

    Asking the catalogue costs tens of milliseconds on DuckDB; a record change asks for several
    tables of every segment it writes.
    """
    known: set[str] = engine.__dict__.setdefault("_segmenta_meta_tables", set())
    if name in known:
        return True
    found = _meta_tables(engine)
    known |= found
    return name in found


def _meta_tables(engine: Any) -> set[str]:
    q = (
        exp.select("table_name")
        .from_(exp.Table(this=ident("tables"), db=ident("information_schema")))
        .where(exp.column("table_schema").eq(exp.Literal.string(engine.meta_schema)))
    )
    return {r["table_name"] for r in engine.run(q).to_pylist()}


def _create_table(table: exp.Table, columns: Sequence[tuple[str, str | exp.DataType]], *, key: str | None = None) -> exp.Create:
    defs: list[exp.Expr] = [exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t)) for c, t in columns]
    if key is not None:
        defs.append(exp.PrimaryKey(expressions=[ident(key)]))
    return exp.Create(this=exp.Schema(this=table.copy(), expressions=defs), kind="TABLE", exists=True)


def shared_statements(engine: Any) -> list[exp.Expr]:
    """The schema and the workspace's shared tables: runs, the event log and its offset row."""
    offsets = _meta_table(engine, EVENT_OFFSET)
    first = exp.insert(
        exp.select(exp.Literal.number(1), exp.cast(exp.Literal.number(0), "BIGINT")), offsets.copy(), columns=["id", "last"]
    )
    first.set("conflict", exp.OnConflict(action=exp.var("DO NOTHING")))
    return [
        exp.Create(this=exp.Table(this=ident(engine.meta_schema)), kind="SCHEMA", exists=True),
        _create_table(_meta_table(engine, RUNS), RUN_COLUMNS),
        _create_table(_meta_table(engine, EVENTS), EVENT_COLUMNS, key="log_offset"),
        _create_table(offsets, [("id", "INTEGER"), ("last", "BIGINT")], key="id"),
        first,
    ]


def ensure_shared(engine: Any) -> None:
    """Create the shared tables once per engine, in a transaction of their own before a write's.

    Two first writes at once (of different segments, on a server) may both try to create them;
    one then fails on the catalogue's unique index, and a second try finds them there. A
    workspace from before the event log keeps its history: each ``history_<id>`` table is moved
    into the log (in the same transaction that creates it) and dropped.
    """
    if engine.__dict__.get("_segmenta_shared_ready"):
        return
    try:
        existing = _meta_tables(engine)
    except EngineError:
        existing = set()
    statements = shared_statements(engine)
    if EVENTS not in existing:
        statements += _history_moves(engine, sorted(t for t in existing if t.startswith("history_") and t[8:].isdigit()))
    try:
        engine.execute(statements)
    except EngineError:
        engine.execute(shared_statements(engine))
    engine.__dict__["_segmenta_shared_ready"] = True


def _history_moves(engine: Any, tables: list[str]) -> list[exp.Expr]:
    """Statements that append the rows of the old per-segment ``history_<id>`` tables to the log, then drop them."""
    events, offsets = _meta_table(engine, EVENTS), _meta_table(engine, EVENT_OFFSET)
    out: list[exp.Expr] = []
    for name in tables:
        segment_id = int(name[8:])
        old = _meta_table(engine, name)
        count = exp.select(exp.Count(this=exp.Star())).from_(old.copy()).subquery()
        order = exp.Order(
            expressions=[exp.Ordered(this=exp.column(c)) for c in ("refresh_id", "at", "change")]
            + [exp.Ordered(this=exp.column("k", table="h"))]
        )
        number = exp.Window(this=exp.RowNumber(), order=order)
        base = exp.select("last").from_(offsets.copy()).subquery()
        rows = exp.select(
            exp.cast(exp.Add(this=base, expression=number), "BIGINT"),
            exp.cast(exp.Literal.number(segment_id), "BIGINT"),
            exp.cast(exp.column("k", table="h"), "VARCHAR"),
            exp.column("change", table="h"),
            exp.column("refresh_id", table="h"),
            exp.column("at", table="h"),
            exp.column("version", table="h"),
            exp.Literal.string(json.dumps({"kind": "history"})),
        ).from_(_history_with_k(engine, old))
        out.append(exp.insert(rows, events.copy(), columns=[c for c, _ in EVENT_COLUMNS]))
        out.append(exp.update(offsets.copy(), {"last": exp.Add(this=exp.column("last"), expression=count)}))
        out.append(exp.Drop(tables=[old.copy()], kind="TABLE", exists=True))
    return out


def _history_with_k(engine: Any, old: exp.Table) -> exp.Subquery:
    """An old history table with its key column (the first) named ``k``."""
    first = engine.run(exp.select("*").from_(old.copy()).limit(0)).column_names[0]
    return (
        exp.select(
            exp.column(first, quoted=True).as_("k"),
            exp.column("change"),
            exp.column("refresh_id"),
            exp.column("at"),
            exp.column("version"),
        )
        .from_(old.copy())
        .subquery("h")
    )


class SqlEventLog:
    """The workspace's event log on a SQL engine: the ``events`` table, in offset order."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def last(self) -> int:
        if not _has_table(self.engine, EVENT_OFFSET):
            return 0
        values = self.engine.column(exp.select("last").from_(_meta_table(self.engine, EVENT_OFFSET)))
        return int(values[0]) if values else 0

    def read(self, *, after: int, segment_ids: list[int] | None, limit: int) -> pa.Table:
        import pyarrow as pa

        if not _has_table(self.engine, EVENTS):
            types = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "TIMESTAMP": pa.timestamp("us"), "INTEGER": pa.int32()}
            return pa.table({c: pa.array([], types[t]) for c, t in EVENT_COLUMNS})
        q = (
            exp.select(*[exp.column(c, quoted=True) for c, _ in EVENT_COLUMNS])
            .from_(_meta_table(self.engine, EVENTS))
            .where(exp.column("log_offset") > exp.Literal.number(after))
        )
        if segment_ids is not None:
            ids: list[exp.Expr] = [exp.Literal.number(i) for i in segment_ids] or [exp.null()]
            q = q.where(exp.column("segment_id").isin(*ids))
        table: pa.Table = self.engine.run(q.order_by(exp.column("log_offset")).limit(limit))
        return table


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
    def events(self) -> exp.Table:
        return self._table(EVENTS)

    @property
    def runs(self) -> exp.Table:
        return self._table(RUNS)

    # -- schema ------------------------------------------------------------------

    def _create(self, table: exp.Table, columns: Sequence[tuple[str, str | exp.DataType]]) -> exp.Create:
        defs = [exp.ColumnDef(this=ident(c), kind=exp.DataType.build(t)) for c, t in columns]
        return exp.Create(this=exp.Schema(this=table.copy(), expressions=defs), kind="TABLE", exists=True)

    def ensure_statements(self) -> list[exp.Expr]:
        """CREATE TABLE IF NOT EXISTS for this segment's members (the shared tables: :func:`shared_statements`)."""
        return [self._create(self.members, [(self.key, key_data_type(self.key_type))])]

    def ensure(self) -> None:
        """Create this segment's (empty) tables if they do not exist yet."""
        ensure_shared(self.engine)
        self.engine.execute(self.ensure_statements())

    def exists(self) -> bool:
        return _has_table(self.engine, f"members_{self.segment_id}")

    # -- writing -------------------------------------------------------------------

    def _write(self, w: Write) -> Changes:
        """One transaction: only the delta (a TEMP table) is materialised, so a refresh that changes little writes little."""
        delta = exp.Table(this=ident(f"__segmenta_delta_{self.segment_id}"))
        temp = exp.Properties(expressions=[exp.TemporaryProperty()])
        statements: list[exp.Expr] = [
            *self.engine.serialise(f"membership {self.segment_id}"),
            *self.ensure_statements(),
            exp.Drop(tables=[delta.copy()], kind="TABLE", exists=True),
            exp.Create(
                this=delta.copy(), kind="TABLE", expression=self.delta_query(w.op, w.keys, within=w.within), properties=temp
            ),
            exp.delete(self.members.copy(), where=exp.In(this=self._key(), query=self.of_change(delta, EXITED).subquery())),
            exp.insert(self.of_change(delta, ENTERED), self.members.copy()),
            exp.insert(self._run_row(delta, w.run_id, w.at, w.version), self.runs.copy()),
            *self._append_events(delta, w),
            exp.Drop(tables=[delta.copy()], kind="TABLE"),
        ]
        ensure_shared(self.engine)
        self.engine.execute(statements, before_commit=w.before_commit)
        record = self.committed(w.run_id)
        assert record is not None, f"run {w.run_id} of segment {self.segment_id} committed no record"
        return Changes(record.entered, record.exited, record.size)

    def _append_events(self, delta: exp.Table, w: Write) -> list[exp.Expr]:
        """Take the next offsets (the one ``event_offset`` row: writers take turns on it) and append the events."""
        offsets = self._table(EVENT_OFFSET)
        n = _count(delta)
        bump = exp.update(offsets.copy(), {"last": exp.Add(this=exp.column("last"), expression=n)})
        # after the bump (this transaction's own row): the first offset of this write is last - n + 1
        base = exp.Sub(this=exp.select("last").from_(offsets.copy()).subquery(), expression=_count(delta))
        rows = self.event_rows(delta, run_id=w.run_id, at=w.at, version=w.version, cause=w.cause, first_offset=base)
        return [bump, exp.insert(rows, self.events.copy(), columns=[c for c, _ in EVENT_COLUMNS])]

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
        if not _has_table(self.engine, RUNS):
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
        """The record of run ``run_id``: the latest one with that id.

        A keyed write that moved nobody deletes its run from the store, and SQLite hands the
        same id to the next run, so two records can carry one id here (the earlier moved
        nobody). The latest is the run just written (as in the file store).
        """
        found = self._records(exp.column("refresh_id").eq(exp.Literal.number(run_id)), latest=True)
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
        """(entered, exited) counts of one run (from its record, else counted in the events)."""
        record = self.committed(run_id)
        if record is not None:
            return record.entered, record.exited
        if not _has_table(self.engine, EVENTS):
            return 0, 0
        return counted(self.engine.run(self.count_changes(self._run_history(run_id))))

    def _typed_key(self) -> exp.Expr:
        return exp.cast(exp.column("key"), key_data_type(self.key_type)).as_(self.key, quoted=True)

    def _events_of_segment(self) -> exp.Select:
        return exp.select().from_(self.events.copy()).where(self._this_segment())

    def _run_history(self, run_id: int) -> exp.Select:
        return (
            self._events_of_segment()
            .select(self._typed_key(), exp.column("change"))
            .where(exp.column("refresh_id").eq(exp.Literal.number(run_id)))
        )

    def delta(self, run_id: int, *, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The keys that entered and exited in run ``run_id``: batches of (key, change), entered first, by key."""
        if not _has_table(self.engine, EVENTS):
            return iter(())
        q = self._run_history(run_id).order_by(exp.column("log_offset"))
        return self.engine.stream(q, batch_size=batch_size)

    def record_history(self, key: Any) -> list[dict[str, Any]]:
        """Every entry and exit of one record, oldest first (with each event's offset and cause)."""
        if not _has_table(self.engine, EVENTS):
            return []
        q = (
            self._events_of_segment()
            .select("at", "change", "version", "refresh_id", "log_offset", "cause")
            .where(exp.column("key").eq(exp.Literal.string(str(key))))
            .order_by("log_offset")
        )
        rows: list[dict[str, Any]] = self.engine.run(q).to_pylist()
        for r in rows:
            r["cause"] = json.loads(r["cause"]) if r["cause"] else None
            r["offset"] = r.pop("log_offset")
        return rows

    def contains(self, key: Any) -> bool:
        if not self.exists():
            return False
        q = exp.select(exp.Count(this=exp.Star())).from_(self.members.copy()).where(self._key().eq(key_literal(key)))
        return bool(self.engine.run(q).column(0)[0].as_py())
