"""What every membership store shares: which keys entered and exited, and the history rows.

The logic is written once, as sqlglot trees that any engine renders in its own dialect:

- :meth:`MembershipBase.delta_query`: the changes of one write as (``key``, ``change``) rows.
  An evaluation (``replace``) is joined with the stored members in one full outer join,
  ``entered = new EXCEPT old`` and ``exited = old EXCEPT new``; a list ``add`` is
  ``keys EXCEPT members``; a ``remove`` is ``members INTERSECT keys``. Only changes are
  ever written, so history grows with changes, not with size x refreshes.
- :meth:`MembershipBase.history_rows`: those changes stamped with the run (id, time, version).
- :meth:`MembershipBase.members_after`: old members minus the exited plus the entered (for
  stores that write a whole new version rather than update in place).

How a write is committed (one SQL transaction, or files behind one atomic rename) is the
implementation's business: :mod:`segmenta.membership.sql` and :mod:`segmenta.membership.files`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.engines.base import Engine
from segmenta.model.schema import ColumnType
from segmenta.types import ENTERED, EXITED, Changes

if TYPE_CHECKING:
    import pyarrow as pa

#: The writes a membership takes.
REPLACE, ADD, REMOVE = "replace", "add", "remove"

#: Key column types, as engine-neutral sqlglot types (each engine renders its own spelling).
_KEY_TYPES: dict[ColumnType, str] = {
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DECIMAL(38, 10)",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}

#: The history's columns after the key: one row per key that entered or exited, per run.
HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("change", "VARCHAR"),
    ("refresh_id", "BIGINT"),
    ("at", "TIMESTAMP"),
    ("version", "INTEGER"),
)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def key_data_type(column_type: ColumnType) -> exp.DataType:
    """The SQL type of a key column (text-like keys are VARCHAR)."""
    return exp.DataType.build(_KEY_TYPES.get(column_type, "VARCHAR"))


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
    import pyarrow as pa

    return pa.table({key: keys})


def timestamp(at: dt.datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(at.isoformat(sep=" ")), "TIMESTAMP")


@dataclass(frozen=True)
class MembershipBase:
    """One saved segment's membership (by segment id, so a rename moves nothing); ``key`` is the audience key."""

    engine: Engine
    segment_id: int
    key: str
    key_type: ColumnType

    @property
    def members(self) -> exp.Table:  # pragma: no cover - every store names its members
        raise NotImplementedError

    def _current(self, alias: str) -> exp.Expr:
        """The current members as a FROM source named ``alias`` (a store without members yet may say: none)."""
        return self.members.copy().as_(alias)

    def _empty(self, alias: str) -> exp.Subquery:
        """No members, as a FROM source named ``alias``."""
        return (
            exp.select(exp.cast(exp.Null(), key_data_type(self.key_type)).as_(self.key, quoted=True))
            .where(exp.false())
            .subquery(alias)
        )

    # -- the shared trees ------------------------------------------------------------------

    def _key(self, table: str | None = None) -> exp.Column:
        return exp.column(self.key, table=table, quoted=True)

    def _keys_of(self, table: exp.Table | exp.Expr) -> exp.Select:
        return exp.select(self._key()).from_(table.copy())

    def _incoming(self, keys: exp.Query, alias: str) -> exp.Subquery:
        """``keys`` (any query whose first column holds keys) as ``alias(key)``, typed like the key, without nulls."""
        keys.set("order", None)  # a membership is a set: sorting it would only cost time (the tree is ours)
        first = exp.column(keys.named_selects[0], table="k", quoted=True)
        typed = (
            exp.select(exp.cast(first, key_data_type(self.key_type)).as_(self.key, quoted=True))
            .from_(keys.subquery("k", copy=False), copy=False)
            .where(first.copy().is_(exp.null()).not_(), copy=False)
        )
        return typed.subquery(alias, copy=False)

    def delta_query(self, op: str, keys: exp.Query) -> exp.Select:
        """The changes that ``op`` of ``keys`` makes to the current members: rows of (key, change).

        ``keys`` is consumed (its ORDER BY is dropped in place; pass a copy to keep it).
        """
        change = exp.column("change")
        if op == REPLACE:
            new, old = self._key("n"), self._key("o")
            # entered = new EXCEPT old, exited = old EXCEPT new: the symmetric difference, in one full outer join
            return (
                exp.select(
                    exp.func("COALESCE", new.copy(), old.copy()).as_(self.key, quoted=True),
                    exp.case()
                    .when(old.copy().is_(exp.null()), exp.Literal.string(ENTERED))
                    .else_(exp.Literal.string(EXITED))
                    .as_("change"),
                )
                .from_(self._incoming(keys, "n"), copy=False)
                .join(self._current("o"), on=new.copy().eq(old.copy()), join_type="FULL OUTER", copy=False)
                .where(exp.or_(new.copy().is_(exp.null()), old.copy().is_(exp.null())), copy=False)
            )
        incoming = exp.select(self._key("i")).from_(self._incoming(keys, "i"), copy=False)
        current = exp.select(self._key("m")).from_(self._current("m"))
        changed: exp.SetOperation
        if op == ADD:
            changed, label = exp.except_(incoming, current), ENTERED
        elif op == REMOVE:
            changed, label = exp.intersect(current, incoming), EXITED
        else:
            raise ValueError(f"unknown membership write {op!r}; writes: {REPLACE}, {ADD}, {REMOVE}")
        return exp.select(self._key("d"), exp.Literal.string(label).as_(change.name)).from_(changed.subquery("d"))

    def history_rows(self, delta: exp.Table | exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> exp.Select:
        """The history rows of one run: each (key, change) of ``delta`` stamped with the run."""
        source = delta.copy() if isinstance(delta, exp.Table) else delta.subquery("d")
        return exp.select(
            self._key(),
            exp.column("change"),
            exp.cast(exp.Literal.number(run_id), "BIGINT").as_("refresh_id"),
            timestamp(at).as_("at"),
            exp.cast(exp.Null() if version is None else exp.Literal.number(version), "INTEGER").as_("version"),
        ).from_(source)

    def of_change(self, delta: exp.Table, change: str) -> exp.Select:
        """The keys of ``delta`` that ``change``d (entered or exited)."""
        return self._keys_of(delta).where(exp.column("change").eq(exp.Literal.string(change)))

    def members_after(self, delta: exp.Table) -> exp.Union:
        """The members once ``delta`` is applied: old ones that did not exit, and the ones that entered."""
        stay = self._keys_of(self.members).where(exp.In(this=self._key(), query=self.of_change(delta, EXITED).subquery()).not_())
        return exp.union(stay, self.of_change(delta, ENTERED), distinct=False)

    def count_changes(self, delta: exp.Table | exp.Query) -> exp.Select:
        """(change, n) of a delta or of history rows."""
        source = delta.copy() if isinstance(delta, exp.Table) else delta.subquery("d")
        return exp.select(exp.column("change"), exp.Count(this=exp.Star()).as_("n")).from_(source).group_by(exp.column("change"))

    # -- the writes ------------------------------------------------------------------------------

    def replace(
        self,
        query: exp.Query,
        *,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None = None,
    ) -> Changes:
        """Replace the members with ``query``'s keys (an evaluation), recording who entered and exited.

        ``query`` is consumed (its ORDER BY is dropped in place; pass a copy to keep it).
        ``before_commit`` is called once everything is written and nothing committed (tests kill
        the process there).
        """
        return self._write(REPLACE, query, run_id, at, version, before_commit)

    def add(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> Changes:
        """Add ``keys`` (a query of one key column); those not yet members are recorded as entered."""
        return self._write(ADD, keys, run_id, at, version, None)

    def remove(self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None) -> Changes:
        """Remove ``keys``; those that were members are recorded as exited."""
        return self._write(REMOVE, keys, run_id, at, version, None)

    def _write(  # pragma: no cover - every store commits its own way
        self,
        op: str,
        keys: exp.Query,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        before_commit: Callable[[], None] | None,
    ) -> Changes:
        """Apply the write ``op`` of ``keys`` (:meth:`delta_query`) as run ``run_id`` and commit it, all or nothing."""
        raise NotImplementedError

    # -- shared reading ----------------------------------------------------------------------

    def source(self) -> exp.Select:
        """The query of the stored members' keys (what ``in_segment`` reads)."""
        return self._keys_of(self.members)


def counted(rows: pa.Table) -> tuple[int, int]:
    """(entered, exited) from the rows of :meth:`MembershipBase.count_changes`."""
    counts = {r["change"]: int(r["n"]) for r in rows.to_pylist()}
    return counts.get(ENTERED, 0), counts.get(EXITED, 0)
