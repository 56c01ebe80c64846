"""Membership and its history, stored in the data engine beside the data.

Per segment (by id, so renames move nothing) the engine holds, in schema ``segmenta``:

- ``members_<id>(<key>)``: the current members;
- ``history_<id>(<key>, change, refresh_id, at, version)``: one row per member that
  entered or exited, per refresh. History grows with changes, not with size x refreshes.

A refresh runs in ONE engine transaction (:meth:`Engine.execute`): the evaluation query
is joined with the stored members to get ``entered = new EXCEPT old`` and ``exited = old
EXCEPT new`` (one full outer join), which are appended to the history and applied to the
members: only the changes are written.
Readers see the old membership or the new, never a mix; a process killed part way
leaves the previous membership intact (the engine rolls the transaction back).
All SQL is built as sqlglot trees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from segmenta.engines.base import Engine
from segmenta.engines.duckdb import SQL_TYPES
from segmenta.model.schema import ColumnType

SCHEMA = "segmenta"
ENTERED = "entered"
EXITED = "exited"


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


@dataclass(frozen=True)
class Membership:
    """The stored membership of one segment: ``key`` is the audience's key column."""

    engine: Engine
    segment_id: int
    key: str
    key_type: ColumnType

    # -- names ------------------------------------------------------------------

    def _table(self, prefix: str) -> exp.Table:
        return exp.Table(this=_ident(f"{prefix}_{self.segment_id}"), db=_ident(SCHEMA))

    @property
    def members(self) -> exp.Table:
        return self._table("members")

    @property
    def history(self) -> exp.Table:
        return self._table("history")

    @property
    def staging(self) -> exp.Table:
        return self._table("staging")

    def _key(self) -> exp.Column:
        return exp.column(self.key, quoted=True)

    def _keys_of(self, table: exp.Table | exp.Expr) -> exp.Select:
        return exp.select(self._key()).from_(table.copy())

    # -- schema ------------------------------------------------------------------

    def _create(self, table: exp.Table, columns: Sequence[tuple[str, str]], *, replace: bool = False) -> exp.Create:
        defs = [exp.ColumnDef(this=_ident(c), kind=exp.DataType.build(t, dialect="duckdb")) for c, t in columns]
        return exp.Create(this=exp.Schema(this=table.copy(), expressions=defs), kind="TABLE", exists=not replace, replace=replace)

    def ensure_statements(self) -> list[exp.Expr]:
        """CREATE SCHEMA / TABLE IF NOT EXISTS for this segment's tables."""
        key_type = SQL_TYPES[self.key_type]
        return [
            exp.Create(this=exp.Table(this=_ident(SCHEMA)), kind="SCHEMA", exists=True),
            self._create(self.members, [(self.key, key_type)]),
            self._create(
                self.history,
                [
                    (self.key, key_type),
                    ("change", "VARCHAR"),
                    ("refresh_id", "BIGINT"),
                    ("at", "TIMESTAMP"),
                    ("version", "INTEGER"),
                ],
            ),
        ]

    def ensure(self) -> None:
        """Create this segment's (empty) tables if they do not exist yet."""
        self.engine.execute(self.ensure_statements())

    def exists(self) -> bool:
        return f"members_{self.segment_id}" in self._segment_tables()

    def _segment_tables(self) -> set[str]:
        q = (
            exp.select("table_name")
            .from_(exp.Table(this=_ident("tables"), db=_ident("information_schema")))
            .where(exp.column("table_schema").eq(exp.Literal.string(SCHEMA)))
        )
        return {r["table_name"] for r in self.engine.run(q).to_pylist()}

    # -- changes -------------------------------------------------------------------

    def _history_rows(self, keys: exp.Query, change: str | None, run_id: int, at: dt.datetime, version: int | None) -> exp.Insert:
        """Append ``keys`` to the history as ``change`` (None: the rows carry their own ``change`` column)."""
        rows = exp.select(
            self._key(),
            exp.column("change") if change is None else exp.Literal.string(change),
            exp.Literal.number(run_id),
            exp.cast(exp.Literal.string(at.isoformat(sep=" ")), "TIMESTAMP"),
            exp.cast(exp.Null() if version is None else exp.Literal.number(version), "INTEGER"),
        ).from_(keys.subquery("d"))
        return exp.insert(rows, self.history.copy())

    def replace(
        self,
        query: exp.Query,
        *,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None = None,
    ) -> None:
        """Replace the members with ``query``'s keys, recording who entered and exited, in one transaction.

        ``query`` is consumed (its ORDER BY is dropped in place; pass a copy to keep it).

        Only the delta (a TEMP table, never written to disk) is materialised: the evaluation is
        joined with the stored members in one full outer join, and only the changes touch the
        members and the history, so a refresh that changes little writes little.
        """
        delta = exp.Table(this=_ident(f"__segmenta_delta_{self.segment_id}"))
        temp = exp.Properties(expressions=[exp.TemporaryProperty()])
        query.set("order", None)  # membership is a set: sorting it here would only cost time (the tree is ours)
        new, old = exp.column(self.key, table="n", quoted=True), exp.column(self.key, table="o", quoted=True)
        # entered = new EXCEPT old, exited = old EXCEPT new: the symmetric difference, in one full outer join
        changes = (
            exp.select(
                exp.func("COALESCE", new.copy(), old.copy()).as_(self.key, quoted=True),
                exp.case()
                .when(old.copy().is_(exp.null()), exp.Literal.string(ENTERED))
                .else_(exp.Literal.string(EXITED))
                .as_("change"),
            )
            .from_(query.subquery("n", copy=False), copy=False)
            .join(self.members.copy().as_("o"), on=new.copy().eq(old.copy()), join_type="FULL OUTER", copy=False)
            .where(exp.or_(new.copy().is_(exp.null()), old.copy().is_(exp.null())), copy=False)
        )

        def of(change: str) -> exp.Select:
            return self._keys_of(delta).where(exp.column("change").eq(exp.Literal.string(change)))

        statements: list[exp.Expr] = [
            *self.ensure_statements(),
            exp.Create(this=delta.copy(), kind="TABLE", replace=True, expression=changes, properties=temp.copy()),
            self._history_rows(self._change_rows(delta), None, run_id, at, version),
            exp.delete(self.members.copy(), where=exp.In(this=self._key(), query=of(EXITED).subquery())),
            exp.insert(of(ENTERED), self.members.copy()),
            exp.Drop(tables=[delta.copy()], kind="TABLE"),
        ]
        self.engine.execute(statements, before_commit=before_commit)

    def _change_rows(self, delta: exp.Table) -> exp.Select:
        return exp.select(self._key(), exp.column("change")).from_(delta.copy())

    def add(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> None:
        """Add ``keys`` (a query of one key column) to the members; those not yet members are recorded as entered."""
        new = exp.except_(
            exp.select(exp.column(self.key, table="k", quoted=True)).from_(keys.subquery("k")), self._keys_of(self.members)
        )
        staged = exp.Create(this=self.staging.copy(), kind="TABLE", replace=True, expression=new)
        statements: list[exp.Expr] = [
            *self.ensure_statements(),
            staged,
            self._history_rows(self._keys_of(self.staging), ENTERED, run_id, at, version),
            exp.insert(self._keys_of(self.staging), self.members.copy()),
            exp.Drop(tables=[self.staging.copy()], kind="TABLE"),
        ]
        self.engine.execute(statements)

    def remove(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> None:
        """Remove ``keys`` from the members; those that were members are recorded as exited."""
        gone = exp.intersect(
            self._keys_of(self.members), exp.select(exp.column(self.key, table="k", quoted=True)).from_(keys.subquery("k"))
        )
        statements: list[exp.Expr] = [
            *self.ensure_statements(),
            exp.Create(this=self.staging.copy(), kind="TABLE", replace=True, expression=gone),
            self._history_rows(self._keys_of(self.staging), EXITED, run_id, at, version),
            exp.delete(self.members.copy(), where=exp.In(this=self._key(), query=self._keys_of(self.staging).subquery())),
            exp.Drop(tables=[self.staging.copy()], kind="TABLE"),
        ]
        self.engine.execute(statements)

    # -- reading -----------------------------------------------------------------------

    def source(self) -> exp.Select:
        """The query of the stored members' keys (what ``in_segment`` reads)."""
        return self._keys_of(self.members)

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
        """(entered, exited) counts of one refresh."""
        q = (
            exp.select(exp.column("change"), exp.Count(this=exp.Star()).as_("n"))
            .from_(self.history.copy())
            .where(exp.column("refresh_id").eq(exp.Literal.number(run_id)))
            .group_by(exp.column("change"))
        )
        counts = {r["change"]: r["n"] for r in self.engine.run(q).to_pylist()}
        return int(counts.get(ENTERED, 0)), int(counts.get(EXITED, 0))

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


def membership_for(engine: Engine, segment_id: int, key: str, key_type: ColumnType) -> Any:
    """The membership store for ``engine``: SQL tables in a DuckDB transaction, or Parquet behind a commit file on Spark."""
    if engine.dialect == "spark":
        from segmenta.services.membership_spark import SparkMembership

        return SparkMembership(engine, segment_id, key, key_type)  # type: ignore[arg-type]
    return Membership(engine, segment_id, key, key_type)


def key_literal(value: Any) -> exp.Expr:
    """A literal for a key value (int or str)."""
    return exp.Literal.number(value) if isinstance(value, int) and not isinstance(value, bool) else exp.Literal.string(str(value))


def values_query(key: str, keys: Sequence[Any]) -> exp.Select:
    """``SELECT key FROM (VALUES ...)``; an empty list gives no rows."""
    if not keys:
        return exp.select(exp.cast(exp.Null(), "BIGINT").as_(key, quoted=True)).where(exp.false())
    values = exp.values([(key_literal(k),) for k in keys], alias="v", columns=[key])
    return exp.select(exp.column(key, table="v")).from_(values)


def to_arrow(key: str, keys: list[Any]) -> pa.Table:
    return pa.table({key: keys})
