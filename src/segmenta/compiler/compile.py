"""Compile a validated segment definition into one sqlglot query.

The query selects the audience key of every member, in ascending order::

    WITH r1 AS (SELECT contactid FROM interaction WHERE ... GROUP BY contactid HAVING COUNT(*) >= 2)
    SELECT t0.contactid FROM contact AS t0
    WHERE t0.statecode = 0 AND ((... AND t0.contactid IN (SELECT contactid FROM r1)) OR ...)
    ORDER BY t0.contactid

How it keeps the contract's meaning on any engine:

* A predicate may be SQL NULL where the contract says "false" (an empty attribute),
  because groups and trees only combine predicates with AND / OR, where NULL acts as
  false. The one negation, BUT NOT, wraps its group in COALESCE(..., FALSE).
* Related-record counts and aggregates become semi-joins on grouped CTEs. When the
  comparison holds for zero records (``count eq 0``, ``sum lt 100``), the query keeps
  the records *not* among those whose count fails, so records with no related rows
  are members without an outer join.
* Many-to-one paths become ``fk IN (SELECT key FROM related WHERE ...)``: a missing
  related record (null or dangling key) makes the condition false.
* Relative windows are resolved to literals from ``as_of`` (see ``timewindows``).

Values enter only as literals; identifiers only from the model, always quoted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlglot import exp

from segmenta.compiler.timewindows import date_window, datetime_window
from segmenta.errors import UnsupportedFeature
from segmenta.model import definition as d
from segmenta.model.schema import ColumnType, Model
from segmenta.model.validate import aggregate_result_column, measure_filter

#: Resolves ``in_segment`` names: (segment name, audience table) -> a query selecting member keys.
SegmentSource = Callable[[str, str], exp.Query]

_LIKE_ESCAPE = "!"


@dataclass
class _Context:
    model: Model
    as_of: dt.datetime
    segments: SegmentSource | None
    ctes: dict[str, tuple[str, exp.Query]] = field(default_factory=dict)  # sql text -> (name, query)
    aliases: int = 0
    #: With ``restrict_to``: alias -> a query of the keys of that alias's table the answer can depend on.
    restrict: dict[str, exp.Query] = field(default_factory=dict)

    def alias(self) -> str:
        name = f"t{self.aliases}"
        self.aliases += 1
        return name

    def cte(self, query: exp.Query) -> str:
        """Name of a CTE holding ``query``; identical queries share one (computed once)."""
        key = query.sql()
        if key not in self.ctes:
            self.ctes[key] = (f"r{len(self.ctes) + 1}", query)
        return self.ctes[key][0]


def compile_definition(
    definition: d.Definition,
    model: Model,
    *,
    as_of: dt.datetime,
    segments: SegmentSource | None = None,
    restrict_to: exp.Query | None = None,
) -> exp.Select:
    """The query selecting the members' keys of ``definition``, ascending.

    ``as_of`` is naive UTC. ``segments`` resolves ``in_segment``; without it such a
    definition raises :class:`UnsupportedFeature`. ``restrict_to`` (a query whose first
    column is audience keys) limits the answer to those keys and pushes the limit into
    every scan: the audience, each path's related records and each related block's rows
    read only what those keys reach, so the work grows with the keys, not the data.
    """
    ctx = _Context(model=model, as_of=as_of, segments=segments)
    table = model.table(definition.audience)
    alias = ctx.alias()
    if restrict_to is not None:
        ctx.restrict[alias] = restrict_to
    combined: exp.Expr | None = None
    for group in definition.groups:
        pred = _condition(ctx, group.where, definition.audience, alias)
        if combined is None:
            combined = pred
        elif group.link == "and_also":
            combined = exp.and_(combined, pred, copy=False)
        elif group.link == "or":
            combined = exp.or_(combined, pred, copy=False)
        else:  # but_not
            combined = exp.and_(combined, exp.not_(exp.func("COALESCE", pred, exp.false())), copy=False)
    assert combined is not None
    key = _col(alias, table.key)
    where = combined
    if table.active is not None:
        rule = table.active
        active = exp.EQ(this=_col(alias, rule.attribute), expression=_literal(rule.equals, table.column(rule.attribute).type))
        where = exp.and_(active, exp.paren(combined, copy=False), copy=False)
    if restrict_to is not None:
        where = exp.and_(_restricted(ctx, alias, table.key), exp.paren(where, copy=False), copy=False)
    query = (
        exp.select(key.copy())
        .from_(exp.Table(this=_ident(definition.audience), alias=exp.TableAlias(this=_ident(alias))))
        .where(where, copy=False)
        .order_by(key.copy())
    )
    for name, cte_query in ctx.ctes.values():
        query = query.with_(_ident(name), as_=cte_query, copy=False)
    return query


# -- conditions -------------------------------------------------------------------


def _condition(ctx: _Context, node: d.Condition, table: str, alias: str) -> exp.Expr:
    if isinstance(node, (d.All, d.AnyOf)):
        return _tree(ctx, node, table, alias)
    if not node.path:
        return _leaf(ctx, node, table, alias)
    return _via_path(ctx, node.path, table, alias, lambda t, a: _leaf(ctx, node.model_copy(update={"path": ()}), t, a))


def _tree(ctx: _Context, node: d.All | d.AnyOf, table: str, alias: str) -> exp.Expr:
    is_all = isinstance(node, d.All)
    if not node.items:
        return exp.true() if is_all else exp.false()
    # Conditions that walk the same first path step reach the same single record, so
    # they share one semi-join: fk IN (SELECT key FROM related WHERE a AND/OR b).
    by_step: dict[str, list[d.Condition]] = {}
    parts: list[exp.Expr | str] = []
    for item in node.items:
        path = getattr(item, "path", ())
        if path:
            if path[0] not in by_step:
                by_step[path[0]] = []
                parts.append(path[0])
            by_step[path[0]].append(item.model_copy(update={"path": path[1:]}))
        else:
            parts.append(_condition(ctx, item, table, alias))
    preds: list[exp.Expr] = []
    for part in parts:
        if isinstance(part, str):
            items = tuple(by_step[part])
            inner: d.Condition = d.All(items=items) if is_all else d.AnyOf(items=items)
            if len(items) == 1:
                inner = items[0]
            preds.append(_via_path(ctx, (part,), table, alias, _scoped(ctx, inner)))
        else:
            preds.append(part)
    combine = exp.and_ if is_all else exp.or_
    return exp.paren(combine(*preds, copy=False), copy=False) if len(preds) > 1 else preds[0]


def _scoped(ctx: _Context, node: d.Condition) -> Callable[[str, str], exp.Expr]:
    """A builder of ``node``'s predicate for whichever (table, alias) a path ends at."""
    return lambda table, alias: _condition(ctx, node, table, alias)


def _via_path(
    ctx: _Context,
    path: Sequence[str],
    table: str,
    alias: str,
    inner: Callable[[str, str], exp.Expr],
) -> exp.Expr:
    """``alias.fk IN (SELECT key FROM related WHERE inner)``, one level per path step."""
    if not path:
        return inner(table, alias)
    rel = ctx.model.many_to_one(table, path[0])
    if rel is None:  # pragma: no cover - validation rejects this
        raise UnsupportedFeature(f"no many-to-one relationship {path[0]!r} from {table!r}")
    sub_alias = ctx.alias()
    if alias in ctx.restrict:  # the related records the restricted records name
        ctx.restrict[sub_alias] = _reached(ctx, table, alias, rel.from_column, ctx.model.table(table).key)
    pred = _via_path(ctx, path[1:], rel.to_table, sub_alias, inner)
    if sub_alias in ctx.restrict:
        pred = exp.and_(_restricted(ctx, sub_alias, rel.to_column), pred, copy=False)
    sub = (
        exp.select(_col(sub_alias, rel.to_column))
        .from_(exp.Table(this=_ident(rel.to_table), alias=exp.TableAlias(this=_ident(sub_alias))))
        .where(pred, copy=False)
    )
    return exp.In(this=_col(alias, rel.from_column), query=sub.subquery(copy=False))


def _leaf(ctx: _Context, node: d.Condition, table: str, alias: str) -> exp.Expr:
    if isinstance(node, d.AttributeCondition):
        column = ctx.model.table(table).column(node.attribute)
        return attribute_predicate(
            _col(alias, node.attribute), column.type, node.op, node.value, as_of=ctx.as_of, case_sensitive=node.case_sensitive
        )
    if isinstance(node, d.RelatedCondition):
        return _related(ctx, node, table, alias)
    if isinstance(node, d.AggregateCondition):
        return _aggregate(ctx, node, table, alias)
    if isinstance(node, d.MeasureCondition):
        m = ctx.model.measures[node.measure]
        agg = d.AggregateCondition(
            related=m.related,
            where=measure_filter(ctx.model, node.measure),
            fn=m.aggregate.fn,
            attribute=m.aggregate.attribute,
            op=node.op,
            value=node.value,
        )
        return _aggregate(ctx, agg, table, alias)
    if isinstance(node, d.InSegment):
        if ctx.segments is None:
            raise UnsupportedFeature(
                f"in_segment {node.segment!r} reads a published segment's members; evaluate it in a workspace with saved segments"
            )
        key = ctx.model.table(table).key
        return exp.In(this=_col(alias, key), query=ctx.segments(node.segment, table).subquery(copy=False))
    raise UnsupportedFeature(f"unsupported condition node {type(node).__name__}")  # pragma: no cover


def _related_source(
    ctx: _Context, related: str, where: d.Condition | None, table: str, scope_alias: str | None = None
) -> tuple[str, exp.Select, str]:
    """(foreign key alias, SELECT fk FROM related WHERE fk IS NOT NULL AND where, scope column)."""
    rel = ctx.model.one_to_many(table, related)
    if rel is None:  # pragma: no cover - validation rejects this
        raise UnsupportedFeature(f"no one-to-many relationship {related!r} from {table!r}")
    r = ctx.alias()
    fk = _col(r, rel.from_column)
    cond: exp.Expr = exp.Not(this=exp.Is(this=fk.copy(), expression=exp.Null()))
    if scope_alias in ctx.restrict:  # only the rows of the restricted records: whole groups, so counts stay right
        cond = exp.and_(cond, _restricted(ctx, scope_alias, rel.from_column, column_alias=r), copy=False)
        ctx.restrict[r] = _reached(ctx, rel.from_table, r, rel.from_column, None, via=scope_alias)
    if where is not None:
        cond = exp.and_(cond, _condition(ctx, where, rel.from_table, r), copy=False)
    sub = (
        exp.select(exp.alias_(fk.copy(), "k", quoted=True))
        .from_(exp.Table(this=_ident(rel.from_table), alias=exp.TableAlias(this=_ident(r))))
        .where(cond, copy=False)
    )
    return r, sub, rel.to_column


def _semi(ctx: _Context, alias: str, scope_column: str, query: exp.Select, *, negate: bool) -> exp.Expr:
    name = ctx.cte(query)
    member = exp.In(
        this=_col(alias, scope_column),
        query=exp.select(exp.column("k", quoted=True)).from_(exp.Table(this=_ident(name))).subquery(copy=False),
    )
    if not negate:
        return member
    # The CTE never holds NULL (fk IS NOT NULL), so NOT IN is two-valued for a non-null scope key.
    return exp.and_(_not_null(_col(alias, scope_column)), exp.Not(this=member), copy=False)


def _related(ctx: _Context, node: d.RelatedCondition, table: str, alias: str) -> exp.Expr:
    op, value = node.count.op, node.count.value
    holds_on_zero = _count_holds(op, value, 0)
    if _count_holds_for_all_positive(op, value) or _count_is_zero_only(op, value):
        # "contains data" is a plain semi-join and "does not contain data" an anti-join: no grouping.
        _, sub, scope_col = _related_source(ctx, node.related, node.where, table, alias)
        return _semi(ctx, alias, scope_col, sub, negate=holds_on_zero)
    _, sub, scope_col = _related_source(ctx, node.related, node.where, table, alias)
    fk = sub.selects[0].this.copy()
    cmp = _count_compare(exp.Count(this=exp.Star()), op, value)
    having = exp.Not(this=exp.paren(cmp, copy=False)) if holds_on_zero else cmp
    grouped = sub.group_by(fk, copy=False).having(having, copy=False)
    return _semi(ctx, alias, scope_col, grouped, negate=holds_on_zero)


def _aggregate(ctx: _Context, node: d.AggregateCondition, table: str, alias: str) -> exp.Expr:
    r, sub, scope_col = _related_source(ctx, node.related, node.where, table, alias)
    rel = ctx.model.one_to_many(table, node.related)
    assert rel is not None
    column = ctx.model.table(rel.from_table).column(node.attribute)
    value_col = _col(r, node.attribute)
    agg: exp.Expr
    if node.fn == "sum":
        agg = exp.func("COALESCE", exp.Sum(this=value_col), exp.Literal.number(0))
    elif node.fn == "avg":
        agg = exp.Avg(this=value_col)
    elif node.fn == "min":
        agg = exp.Min(this=value_col)
    elif node.fn == "max":
        agg = exp.Max(this=value_col)
    else:
        agg = exp.Count(this=exp.Distinct(expressions=[_distinct_value(value_col, column.type)]))
    result_type = aggregate_result_column(node.fn, column).type
    if node.fn == "avg":
        cmp = _avg_compare(exp.Sum(this=value_col.copy()), exp.Count(this=value_col.copy()), node.op, node.value)
    else:
        cmp = attribute_predicate(agg, result_type, node.op, node.value, as_of=ctx.as_of, case_sensitive=True)
    empty_value = 0 if node.fn in ("sum", "count_distinct") else None
    holds_on_empty = constant_holds(node.op, node.value, empty_value)
    having = exp.Not(this=exp.func("COALESCE", cmp, exp.false())) if holds_on_empty else cmp
    fk = sub.selects[0].this.copy()
    grouped = sub.group_by(fk, copy=False).having(having, copy=False)
    return _semi(ctx, alias, scope_col, grouped, negate=holds_on_empty)


def _avg_compare(total: exp.Expr, count: exp.Expr, op: str, value: Any) -> exp.Expr:
    """``avg <op> value`` as ``total <op> value * count``, exact in DECIMAL.

    Engines return AVG of a DECIMAL as a DOUBLE, so an average of exactly 26.68 could
    fail ``eq 26.68`` or ``gte 26.68``. Multiplying instead of dividing keeps every
    comparison exact; ``count > 0`` keeps the direction of the inequalities and makes
    the comparison false where the average is null (no values).
    """
    zero = exp.Literal.number(0)
    if op == "is_empty":
        return exp.EQ(this=count, expression=zero)
    if op == "is_not_empty":
        return exp.GT(this=count, expression=zero)

    def times_count(v: Any) -> exp.Expr:
        return exp.Mul(this=_number(v), expression=count.copy())

    pred: exp.Expr
    if op in ("between", "not_between"):
        between = exp.Between(this=total, low=times_count(value[0]), high=times_count(value[1]))
        pred = between if op == "between" else exp.Not(this=exp.paren(between, copy=False))
    elif op in ("in", "not_in"):
        isin = exp.or_(*[exp.EQ(this=total.copy(), expression=times_count(v)) for v in value], copy=False)
        pred = exp.paren(isin, copy=False) if op == "in" else exp.Not(this=exp.paren(isin, copy=False))
    else:
        cls = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
        pred = cls(this=total, expression=times_count(value))
    return exp.and_(exp.GT(this=count.copy(), expression=zero), pred, copy=False)


def _distinct_value(col: exp.Expr, ctype: ColumnType) -> exp.Expr:
    """What count_distinct counts: an empty "" is no value, and text ignores case like every text comparison."""
    if ctype is ColumnType.TEXT:
        return exp.Lower(this=exp.Nullif(this=col, expression=exp.Literal.string("")))
    if ctype is ColumnType.CHOICE:
        return exp.Nullif(this=col, expression=exp.Literal.string(""))
    return col


# -- counts -----------------------------------------------------------------------


def _count_holds(op: str, value: int | tuple[int, int], n: int) -> bool:
    if op == "between":
        low, high = value  # type: ignore[misc]
        return bool(low <= n <= high)
    v = value
    return {"eq": n == v, "ne": n != v, "gt": n > v, "gte": n >= v, "lt": n < v, "lte": n <= v}[op]  # type: ignore[operator]


def _count_holds_for_all_positive(op: str, value: int | tuple[int, int]) -> bool:
    """True when every count >= 1 satisfies the comparison (gte 1, gt 0, ne 0)."""
    return (op == "gte" and value == 1) or (op == "gt" and value == 0) or (op == "ne" and value == 0)


def _count_is_zero_only(op: str, value: int | tuple[int, int]) -> bool:
    """True when only a count of 0 satisfies the comparison (eq 0, lt 1, lte 0, between [0, 0])."""
    return (op, value) in (("eq", 0), ("lt", 1), ("lte", 0), ("between", (0, 0)))


def _count_compare(count: exp.Expr, op: str, value: int | tuple[int, int]) -> exp.Expr:
    if op == "between":
        low, high = value  # type: ignore[misc]
        return exp.Between(this=count, low=_number(low), high=_number(high))
    cls = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
    return cls(this=count, expression=_number(value))


def constant_holds(op: str, value: Any, constant: int | None) -> bool:
    """Whether a numeric comparison holds for ``constant`` (None: an empty/null value)."""
    if constant is None:
        return op == "is_empty"
    if op == "is_empty":
        return False
    if op == "is_not_empty":
        return True
    if op in ("between", "not_between"):
        inside = value[0] <= constant <= value[1]
        return inside if op == "between" else not inside
    if op in ("in", "not_in"):
        return (constant in value) == (op == "in")
    result = {
        "eq": constant == value,
        "ne": constant != value,
        "gt": constant > value,
        "gte": constant >= value,
        "lt": constant < value,
        "lte": constant <= value,
    }.get(op, False)
    return bool(result)


# -- attribute predicates -------------------------------------------------------------


def attribute_predicate(
    col: exp.Expr,
    ctype: ColumnType,
    op: str,
    value: Any,
    *,
    as_of: dt.datetime,
    case_sensitive: bool = False,
) -> exp.Expr:
    """SQL for ``col <op> value`` with the contract's meaning; NULL where it means false."""
    if ctype is ColumnType.TEXT:
        return _text(col, op, value, case_sensitive)
    if ctype in (ColumnType.INTEGER, ColumnType.DECIMAL):
        return _ordered(col, op, value, lambda v: _literal(v, ctype))
    if ctype is ColumnType.DATE:
        return _date(col, op, value, as_of)
    if ctype is ColumnType.DATETIME:
        return _datetime(col, op, value, as_of)
    if ctype is ColumnType.BOOLEAN:
        if op in ("is_true", "is_false"):
            return exp.EQ(this=col, expression=exp.true() if op == "is_true" else exp.false())
        return exp.Is(this=col, expression=exp.Null()) if op == "is_empty" else _not_null(col)
    if ctype is ColumnType.CHOICE:
        return _choice(col, op, value)
    if ctype is ColumnType.CHOICES:
        return _choices(col, op, value)
    raise UnsupportedFeature(f"no operators for type {ctype}")  # pragma: no cover


def _text(col: exp.Expr, op: str, value: Any, case_sensitive: bool) -> exp.Expr:
    def fold(e: exp.Expr) -> exp.Expr:
        return e if case_sensitive else exp.Lower(this=e)

    not_blank = exp.NEQ(this=col.copy(), expression=exp.Literal.string(""))
    if op in ("is_empty", "is_not_empty"):
        return _blank_test(col, op)
    values = value if isinstance(value, tuple) else (value,)
    if op in ("eq", "in", "ne", "not_in"):
        lits = [fold(exp.Literal.string(v)) for v in values]
        base: exp.Expr = (
            exp.EQ(this=fold(col.copy()), expression=lits[0])
            if op in ("eq", "ne")
            else exp.In(this=fold(col.copy()), expressions=lits)
        )
    else:
        (text,) = values
        pattern = _like_escape(text)
        pattern = {"contains": f"%{pattern}%", "starts_with": f"{pattern}%", "ends_with": f"%{pattern}"}[op.removeprefix("not_")]
        like = exp.Like(this=fold(col.copy()), expression=fold(exp.Literal.string(pattern)))
        base = exp.Escape(this=like, expression=exp.Literal.string(_LIKE_ESCAPE)) if pattern_needs_escape(text) else like
    negative = op in ("ne", "not_in") or op.startswith("not_")
    if negative:
        return exp.and_(not_blank, exp.Not(this=exp.paren(base, copy=False)), copy=False)
    if any(v == "" for v in values):
        return exp.and_(not_blank, base, copy=False)
    return base


def pattern_needs_escape(text: str) -> bool:
    return any(ch in text for ch in ("%", "_", _LIKE_ESCAPE))


def _like_escape(text: str) -> str:
    out = text.replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
    return out.replace("%", f"{_LIKE_ESCAPE}%").replace("_", f"{_LIKE_ESCAPE}_")


def _ordered(col: exp.Expr, op: str, value: Any, lit: Callable[[Any], exp.Expr]) -> exp.Expr:
    if op == "is_empty":
        return exp.Is(this=col, expression=exp.Null())
    if op == "is_not_empty":
        return _not_null(col)
    if op in ("between", "not_between"):
        between = exp.Between(this=col, low=lit(value[0]), high=lit(value[1]))
        return between if op == "between" else exp.Not(this=exp.paren(between, copy=False))
    if op in ("in", "not_in"):
        isin = exp.In(this=col, expressions=[lit(v) for v in value])
        return isin if op == "in" else exp.Not(this=exp.paren(isin, copy=False))
    cls = {
        "eq": exp.EQ,
        "ne": exp.NEQ,
        "gt": exp.GT,
        "gte": exp.GTE,
        "lt": exp.LT,
        "lte": exp.LTE,
        "on": exp.EQ,
        "not_on": exp.NEQ,
        "before": exp.LT,
        "after": exp.GT,
        "on_or_before": exp.LTE,
        "on_or_after": exp.GTE,
    }[op]
    return cls(this=col, expression=lit(value))


def _date(col: exp.Expr, op: str, value: Any, as_of: dt.datetime) -> exp.Expr:
    if op in ("in_last", "in_next", "not_in_last"):
        low, high = date_window("in_next" if op == "in_next" else "in_last", value, as_of)
        return _window(col, op, _date_lit(low), _date_lit(high))
    return _ordered(col, op, value, _date_lit)


def _datetime(col: exp.Expr, op: str, value: Any, as_of: dt.datetime) -> exp.Expr:
    if op in ("in_last", "in_next", "not_in_last"):
        low, high = datetime_window("in_next" if op == "in_next" else "in_last", value, as_of)
        return _window(col, op, _ts_lit(low), _ts_lit(high))
    if op in ("is_empty", "is_not_empty"):
        return _ordered(col, op, value, _ts_lit)

    # Calendar-date comparisons as half-open timestamp ranges: same meaning as
    # comparing CAST(col AS DATE), but an engine can use the column's statistics.
    def start(day: dt.date) -> exp.Expr:
        return _ts_lit(dt.datetime.combine(day, dt.time()))

    def end(day: dt.date) -> exp.Expr:  # first instant after ``day``
        return _ts_lit(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))

    if op == "between":
        low, high = value
        return exp.and_(exp.GTE(this=col, expression=start(low)), exp.LT(this=col.copy(), expression=end(high)))
    if op == "on":
        return exp.and_(exp.GTE(this=col, expression=start(value)), exp.LT(this=col.copy(), expression=end(value)))
    if op == "not_on":
        return exp.paren(exp.or_(exp.LT(this=col, expression=start(value)), exp.GTE(this=col.copy(), expression=end(value))))
    if op in ("before", "on_or_after"):
        cls: type[exp.Binary] = exp.LT if op == "before" else exp.GTE
        return cls(this=col, expression=start(value))
    cls = exp.LT if op == "on_or_before" else exp.GTE  # on_or_before / after
    return cls(this=col, expression=end(value))


def _window(col: exp.Expr, op: str, low: exp.Expr, high: exp.Expr) -> exp.Expr:
    if op == "not_in_last":
        return exp.paren(exp.or_(exp.LT(this=col, expression=low), exp.GT(this=col.copy(), expression=high)))
    return exp.Between(this=col, low=low, high=high)


def _blank_test(col: exp.Expr, op: str) -> exp.Expr:
    """is_empty / is_not_empty on a string column: empty means null or ''."""
    if op == "is_not_empty":
        return exp.NEQ(this=col, expression=exp.Literal.string(""))
    return exp.paren(exp.or_(exp.Is(this=col, expression=exp.Null()), exp.EQ(this=col.copy(), expression=exp.Literal.string(""))))


def _choice(col: exp.Expr, op: str, value: Any) -> exp.Expr:
    not_blank = exp.NEQ(this=col.copy(), expression=exp.Literal.string(""))
    if op in ("is_empty", "is_not_empty"):
        return _blank_test(col, op)
    if op == "eq":
        return exp.EQ(this=col, expression=exp.Literal.string(value))
    if op == "in":
        return exp.In(this=col, expressions=[exp.Literal.string(v) for v in value])
    base = (
        exp.EQ(this=col, expression=exp.Literal.string(value))
        if op == "ne"
        else exp.In(this=col, expressions=[exp.Literal.string(v) for v in value])
    )
    return exp.and_(not_blank, exp.Not(this=exp.paren(base, copy=False)), copy=False)


def _choices(col: exp.Expr, op: str, value: Any) -> exp.Expr:
    size = exp.ArraySize(this=col.copy())
    if op == "is_empty":
        return exp.EQ(this=exp.func("COALESCE", size, exp.Literal.number(0)), expression=exp.Literal.number(0))
    non_empty = exp.GT(this=size, expression=exp.Literal.number(0))
    if op == "is_not_empty":
        return non_empty
    has = [exp.ArrayContains(this=col.copy(), expression=exp.Literal.string(v)) for v in value]
    if op == "contains_all":
        return exp.paren(exp.and_(*has, copy=False)) if len(has) > 1 else has[0]
    any_of = exp.paren(exp.or_(*has, copy=False)) if len(has) > 1 else has[0]
    if op == "contains_any":
        return any_of
    return exp.and_(non_empty, exp.Not(this=exp.paren(any_of, copy=False)), copy=False)  # not_contains_any


# -- restriction to a set of keys (restrict_to) -----------------------------------------


def _restricted(ctx: _Context, alias: str, column: str, *, column_alias: str | None = None) -> exp.Expr:
    """``alias.column IN (the keys ``alias`` is restricted to)``."""
    return exp.In(this=_col(column_alias or alias, column), query=ctx.restrict[alias].copy().subquery(copy=False))


def _reached(ctx: _Context, table: str, alias: str, select: str, key: str | None, *, via: str | None = None) -> exp.Query:
    """Keys reached from the restricted records of ``alias``: ``SELECT select FROM table WHERE ...``.

    A path step (``key`` given): the foreign key ``select`` of ``table``'s restricted records.
    A related block (``via`` given): the keys of ``table``'s rows whose foreign key ``select``
    names a restricted record of ``via``.
    """
    t = ctx.model.table(table)
    if via is not None:
        cond = exp.In(this=exp.column(select, quoted=True), query=ctx.restrict[via].copy().subquery(copy=False))
        return exp.select(exp.column(t.key, quoted=True)).from_(exp.Table(this=_ident(table))).where(cond, copy=False)
    assert key is not None
    cond = exp.In(this=exp.column(key, quoted=True), query=ctx.restrict[alias].copy().subquery(copy=False))
    return exp.select(exp.column(select, quoted=True)).from_(exp.Table(this=_ident(table))).where(cond, copy=False)


# -- helpers ------------------------------------------------------------------------------


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(alias: str, name: str) -> exp.Column:
    return exp.Column(this=_ident(name), table=_ident(alias))


def _not_null(col: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=col, expression=exp.Null()))


def _date_lit(v: dt.date) -> exp.Expr:
    return exp.cast(exp.Literal.string(v.isoformat()), exp.DataType.Type.DATE)


def _ts_lit(v: dt.datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(v.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)


#: Stored numbers stay below this (DECIMAL(38, 10) and BIGINT columns, counts).
_HUGE = Decimal(10) ** 28


def _number(v: Any) -> exp.Expr:
    """A numeric literal; one no column can hold becomes a DOUBLE.

    An engine casts a literal to the column's DECIMAL(38, 10) and fails when it does
    not fit (``amount < 1e30``). No stored value comes near such a literal, so comparing
    as DOUBLE gives the same answer without the error.
    """
    number = Decimal(str(v))
    literal = exp.Literal.number(format(number, "f"))
    return exp.cast(literal, exp.DataType.Type.DOUBLE) if abs(number) >= _HUGE else literal


def _literal(v: Any, ctype: ColumnType) -> exp.Expr:
    """A typed SQL literal for a value already checked against ``ctype``."""
    if v is None:
        return exp.Null()
    if ctype is ColumnType.BOOLEAN or isinstance(v, bool):
        return exp.true() if v else exp.false()
    if ctype in (ColumnType.INTEGER, ColumnType.DECIMAL):
        return _number(v)
    if ctype is ColumnType.DATE:
        return _date_lit(v)
    if ctype is ColumnType.DATETIME:
        return _ts_lit(v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time()))
    return exp.Literal.string(str(v))
