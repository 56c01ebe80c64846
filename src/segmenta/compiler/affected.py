"""Which audience records a change can affect: a sqlglot query of their keys.

A definition reads columns on the records reached from each audience record along
routes of relationships (:mod:`segmenta.compiler.reads`). When records of table T
change, the audience records that may change membership are those that reach a
changed record along a route whose scope on T reads a changed column. This module
walks each such route backwards, from the changed records to the audience:

* an ``up`` step (``prev.fk -> T.key``: a contact's account) goes back to the records
  whose foreign key names the changed keys: an account affects its contacts;
* a ``down`` step (``T.fk -> prev.key``: a contact's orders) goes back to the record
  the foreign key names: an order affects its contact.

The changed rows are given as a query that yields T's key and every foreign-key
column of T, once per version: the old row of an update or delete and the new row of
an insert or update (an order moved from contact 1 to contact 2 affects both). Where
a walk reads T itself (a route through T, a self-relationship), it reads T together
with those versions, so the answer is the same whether the query runs before the
change is applied or after. Each step is a semi-join on one foreign key, so the work
grows with the change and the records linked to it, not with the data.

Example::

    changed = exp.select("orderid", "contactid").from_("staged_orders")  # old and new versions
    query = affected_keys(model, reads, "order", changed, columns={"amount"})
    keys = engine.column(query) if query is not None else []
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlglot import exp

from segmenta.compiler.reads import Reads, Scope, Step
from segmenta.model.schema import Model

#: The one column of the queries built here.
KEY = "k"


def foreign_keys(model: Model, table: str) -> list[str]:
    """The foreign-key columns of ``table`` (the columns a ``changed`` query must carry beside the key)."""
    out: list[str] = []
    for rel in model.relationships:
        if rel.from_table == table and rel.from_column not in out:
            out.append(rel.from_column)
    return out


def affected_keys(
    model: Model,
    reads: Reads,
    table: str,
    changed: exp.Query,
    *,
    columns: Iterable[str] | None = None,
) -> exp.Query | None:
    """The keys (column ``k``, distinct) of the audience records a change of ``table`` may affect, or None for none.

    ``changed`` yields ``table``'s key and foreign-key columns (:func:`foreign_keys`),
    old and new versions of every changed row. ``columns`` are the columns the change
    sets (None: every column, as an insert or delete does); a scope that reads none of
    them is not walked.
    """
    starts = reads.scopes_on(table, columns)
    if not starts:
        return None
    key = model.table(table).key
    fks = foreign_keys(model, table)
    versions = exp.select(*[_c(c) for c in (key, *fks)]).from_(changed.subquery("changed_rows", copy=True))
    start = exp.select(exp.alias_(_c(key), KEY, quoted=True)).from_(versions.subquery("v", copy=False))
    return _union([_walk(model, reads.audience, scope, start, table, versions) for scope in starts])


def affected_by_segment(model: Model, reads: Reads, segment: str, keys: exp.Query) -> exp.Query | None:
    """The audience keys whose membership may change when stored segment ``segment`` changes for ``keys``.

    ``keys`` yields the keys (first column) whose membership of ``segment`` changed; a
    definition reading ``segment`` through ``in_segment`` (on any scope) is affected
    for the audience records that reach those keys.
    """
    scopes = [s for s in reads.scopes if segment in s.segments]
    if not scopes:
        return None
    start = exp.select(exp.alias_(exp.column(keys.selects[0].alias_or_name, quoted=True), KEY, quoted=True)).from_(
        keys.subquery("segment_keys", copy=True)
    )
    return _union([_walk(model, reads.audience, scope, start, None, None) for scope in scopes])


def clock_affected_keys(model: Model, reads: Reads, before: dt.datetime, after: dt.datetime) -> exp.Query | None:
    """The keys of the audience records whose membership may change when the clock moves from ``before`` to ``after``.

    For each relative window the definition reads, the records of its table whose condition
    answers differently at the two clocks (they crossed an edge of the window), walked back
    to the audience along the window's route; None when the definition reads no window.
    Null-safe: a condition that is null at one clock and false at the other changes nothing.
    """
    from segmenta.compiler.compile import attribute_predicate

    if not reads.windows:
        return None
    starts: list[exp.Select] = []
    for w in reads.windows:
        table = model.table(w.table)
        col = exp.column(w.condition.attribute, quoted=True)
        ctype = table.column(w.condition.attribute).type

        def holds(at: dt.datetime, cond: Any = w.condition, c: exp.Column = col, t: Any = ctype) -> exp.Expr:
            predicate = attribute_predicate(c.copy(), t, cond.op, cond.value, as_of=at, case_sensitive=cond.case_sensitive)
            return exp.func("COALESCE", exp.paren(predicate), exp.false())

        crossed = exp.NEQ(this=holds(before), expression=holds(after))
        start = (
            exp.select(exp.alias_(_c(table.key), KEY, quoted=True))
            .from_(exp.Table(this=exp.to_identifier(w.table, quoted=True)))
            .where(exp.and_(_swept(col, ctype, w.condition, before, after), crossed))
        )
        scope = Scope(route=w.route, table=w.table, columns=frozenset({w.condition.attribute}))
        starts.append(_walk(model, reads.audience, scope, start, None, None))
    return _union(starts)


def _swept(col: exp.Column, ctype: Any, cond: Any, before: dt.datetime, after: dt.datetime) -> exp.Expr:
    """The values an edge of ``cond``'s window sweeps over between the two clocks (a range test an engine can index).

    A record can cross the window only if its value lies between an edge's two positions.
    """
    from segmenta.compiler.compile import _date_lit, _ts_lit
    from segmenta.compiler.timewindows import date_window, datetime_window
    from segmenta.model.schema import ColumnType

    op = "in_next" if cond.op == "in_next" else "in_last"
    if ctype is ColumnType.DATE:
        (l0, h0), (l1, h1) = date_window(op, cond.value, before), date_window(op, cond.value, after)
        lit: Any = _date_lit
    else:
        (l0, h0), (l1, h1) = datetime_window(op, cond.value, before), datetime_window(op, cond.value, after)
        lit = _ts_lit
    edges = [exp.Between(this=col.copy(), low=lit(min(a, b)), high=lit(max(a, b))) for a, b in ((l0, l1), (h0, h1))]
    return exp.paren(exp.or_(*edges))


def _walk(
    model: Model, audience: str, scope: Scope, start: exp.Select, changed_table: str | None, versions: exp.Select | None
) -> exp.Select:
    """Keys of the audience records that reach, along ``scope.route``, the records of ``start`` (keys of ``scope.table``)."""
    current = start
    tables = _tables_along(model, audience, scope.route)
    for i in range(len(scope.route), 0, -1):
        step: Step = scope.route[i - 1]
        rel = model.relationships[step.rel]
        prev_table, this_table = tables[i - 1], tables[i]
        if step.direction == "up":  # prev.fk -> this.key: the prev records naming these keys
            src = _source(model, prev_table, changed_table, versions)
            fk = _c(rel.from_column)
            naming = exp.In(this=fk, query=current.subquery(copy=False))
            current = exp.select(exp.alias_(_c(model.table(prev_table).key), KEY, quoted=True)).from_(src).where(naming)
        else:  # this.fk -> prev.key: the prev records these rows name
            src = _source(model, this_table, changed_table, versions)
            fk = _c(rel.from_column)
            where = exp.and_(
                exp.In(this=_c(model.table(this_table).key), query=current.subquery(copy=False)),
                exp.Not(this=exp.Is(this=fk.copy(), expression=exp.Null())),
            )
            current = exp.select(exp.alias_(fk.copy(), KEY, quoted=True)).from_(src).where(where)
    return current


def _tables_along(model: Model, audience: str, route: tuple[Step, ...]) -> list[str]:
    tables = [audience]
    for step in route:
        rel = model.relationships[step.rel]
        tables.append(rel.to_table if step.direction == "up" else rel.from_table)
    return tables


def _source(model: Model, table: str, changed_table: str | None, versions: exp.Select | None) -> exp.Expr:
    """``table`` to read in a walk; the changed table together with the changed rows' old and new versions."""
    stored = exp.Table(this=exp.to_identifier(table, quoted=True))
    if table != changed_table or versions is None:
        return stored
    cols = [model.table(table).key, *foreign_keys(model, table)]
    both = exp.union(exp.select(*[_c(c) for c in cols]).from_(stored), versions.copy(), distinct=False)
    return both.subquery("with_versions", copy=False)


def _union(queries: list[exp.Select]) -> exp.Query:
    out: exp.Query = queries[0]
    for q in queries[1:]:
        out = exp.union(out, q, distinct=True)
    if len(queries) == 1:
        out = out.distinct() if isinstance(out, exp.Select) else out
    return out


def _c(name: str) -> exp.Column:
    return exp.column(name, quoted=True)
