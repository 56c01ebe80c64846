"""What every membership store shares: which keys entered and exited, and the history rows.

The logic is written once, as sqlglot trees that any engine renders in its own dialect:

- :meth:`MembershipBase.delta_query`: the changes of one write as (``key``, ``change``) rows.
  An evaluation (``replace``) is joined with the stored members in one full outer join,
  ``entered = new EXCEPT old`` and ``exited = old EXCEPT new``; a list ``add`` is
  ``keys EXCEPT members``; a ``remove`` is ``members INTERSECT keys``. Only changes are
  ever written, so history grows with changes, not with size x refreshes.
- :meth:`MembershipBase.event_rows`: those changes as membership events, stamped with the run
  (id, time, version), the cause and their offsets in the workspace's one event log. The
  events ARE the membership history: ``segment history`` and ``delta(run)`` read them, so
  there is one log, not two.
- :meth:`MembershipBase.members_after`: old members minus the exited plus the entered (for
  stores that write a whole new version rather than update in place).

How a write is committed (one SQL transaction, or files behind one atomic rename) is the
implementation's business: :mod:`segmenta.membership.sql` and :mod:`segmenta.membership.files`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.engines.base import Engine
from segmenta.engines.sqltypes import sql_type
from segmenta.model.schema import ColumnType
from segmenta.types import ENTERED, EXITED, Changes

if TYPE_CHECKING:
    import pyarrow as pa

#: The writes a membership takes.
REPLACE, ADD, REMOVE = "replace", "add", "remove"

#: The event log's columns: one row per key that entered or exited a segment, in offset order over
#: the workspace. Keys of every audience share the log, so they are kept as text (and typed back
#: like the audience's key when read for one segment).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("log_offset", "BIGINT"),
    ("segment_id", "BIGINT"),
    ("key", "VARCHAR"),
    ("change", "VARCHAR"),
    ("refresh_id", "BIGINT"),
    ("at", "TIMESTAMP"),
    ("version", "INTEGER"),
    ("cause", "VARCHAR"),  # JSON: {"kind": publish|refresh|records|clock|import|..., "run": id, ...}
)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def key_data_type(column_type: ColumnType) -> exp.DataType:
    """The SQL type of a key column: the one type map's (engines/sqltypes.py), each engine spelling its own."""
    return sql_type(column_type)


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
class Write:
    """One membership write: ``op`` of ``keys`` as run ``run_id`` (what the events of it say)."""

    op: str
    keys: exp.Query
    run_id: int
    at: dt.datetime
    version: int | None
    before_commit: Callable[[], None] | None
    cause: Mapping[str, Any] | None
    within: exp.Query | None


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

    def _current_within(self, alias: str, within: exp.Query | None) -> exp.Expr:
        """The current members (only those among ``within``'s keys, when given) as a FROM source named ``alias``."""
        if within is None:
            return self._current(alias)
        scope = self._incoming(within, "w")
        inner = exp.select(self._key("c")).from_(self._current("c"))
        inner = inner.where(exp.In(this=self._key("c"), query=exp.select(self._key("w")).from_(scope).subquery()))
        return inner.subquery(alias)

    def delta_query(self, op: str, keys: exp.Query, *, within: exp.Query | None = None) -> exp.Select:
        """The changes that ``op`` of ``keys`` makes to the current members: rows of (key, change).

        ``keys`` is consumed (its ORDER BY is dropped in place; pass a copy to keep it).
        ``within`` (a replace only): the write concerns only these keys. ``keys`` then holds
        the members among them (an evaluation restricted to them), and members outside them
        stay as they are: what a record change does, at the cost of the keys it touches.
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
                .join(self._current_within("o", within), on=new.copy().eq(old.copy()), join_type="FULL OUTER", copy=False)
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

    def event_rows(
        self,
        delta: exp.Table | exp.Query,
        *,
        run_id: int,
        at: dt.datetime,
        version: int | None,
        cause: Mapping[str, Any] | None,
        first_offset: exp.Expr,
    ) -> exp.Select:
        """The events of one run: each (key, change) of ``delta`` stamped with the run, numbered from ``first_offset``.

        Within a run, entered come before exited, each by key (the order ``delta`` streams them).
        """
        source = delta.copy() if isinstance(delta, exp.Table) else delta.subquery("d")
        order = exp.Order(expressions=[exp.Ordered(this=exp.column("change")), exp.Ordered(this=self._key())])
        number = exp.Window(this=exp.RowNumber(), order=order)
        return exp.select(
            exp.cast(exp.Add(this=exp.paren(first_offset, copy=False), expression=number), "BIGINT").as_("log_offset"),
            exp.cast(exp.Literal.number(self.segment_id), "BIGINT").as_("segment_id"),
            exp.cast(self._key(), "VARCHAR").as_("key"),
            exp.column("change"),
            exp.cast(exp.Literal.number(run_id), "BIGINT").as_("refresh_id"),
            timestamp(at).as_("at"),
            exp.cast(exp.Null() if version is None else exp.Literal.number(version), "INTEGER").as_("version"),
            exp.Literal.string(cause_json(run_id, cause)).as_("cause"),
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
        cause: Mapping[str, Any] | None = None,
        within: exp.Query | None = None,
    ) -> Changes:
        """Replace the members with ``query``'s keys (an evaluation), recording who entered and exited.

        ``query`` is consumed (its ORDER BY is dropped in place; pass a copy to keep it).
        ``before_commit`` is called once everything is written and nothing committed (tests kill
        the process there). ``cause`` is what the events say caused them (``kind`` and more).
        ``within``: only these keys are concerned (see :meth:`delta_query`).
        """
        return self._write(Write(REPLACE, query, run_id, at, version, before_commit, cause, within))

    def add(
        self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None, cause: Mapping[str, Any] | None = None
    ) -> Changes:
        """Add ``keys`` (a query of one key column); those not yet members are recorded as entered."""
        return self._write(Write(ADD, keys, run_id, at, version, None, cause, None))

    def remove(
        self, keys: exp.Query, *, run_id: int, at: dt.datetime, version: int | None, cause: Mapping[str, Any] | None = None
    ) -> Changes:
        """Remove ``keys``; those that were members are recorded as exited."""
        return self._write(Write(REMOVE, keys, run_id, at, version, None, cause, None))

    def _write(self, w: Write) -> Changes:  # pragma: no cover - every store commits its own way
        """Apply the write ``w`` (:meth:`delta_query`) as its run and commit it, all or nothing."""
        raise NotImplementedError

    # -- shared reading ----------------------------------------------------------------------

    def source(self) -> exp.Select:
        """The query of the stored members' keys (what ``in_segment`` reads)."""
        return self._keys_of(self.members)


def cause_json(run_id: int, cause: Mapping[str, Any] | None) -> str:
    """An event's cause as stored: what the caller said (kind, change ids, clock) plus the run."""
    return json.dumps({"kind": "refresh", **(cause or {}), "run": run_id}, sort_keys=True, default=str)


def counted(rows: pa.Table) -> tuple[int, int]:
    """(entered, exited) from the rows of :meth:`MembershipBase.count_changes`."""
    counts = {r["change"]: int(r["n"]) for r in rows.to_pylist()}
    return counts.get(ENTERED, 0), counts.get(EXITED, 0)
