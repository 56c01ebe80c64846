"""A plain-Python reference evaluator for segment definitions (contract sections 2 and 3).

It evaluates a typed :class:`~segmenta.model.definition.Definition` row by row over
plain Python data, straight from the contract's sentences, with no SQL and nothing
borrowed from the compiler. Tests compare it with the compiled SQL on every record.

Data is ``{table: [row, ...]}`` where a row maps every column to a Python value:
``str``, ``int``, ``Decimal``, ``bool``, ``datetime.date``, naive-UTC ``datetime.datetime``,
``list[str]`` (a ``choices`` column) or ``None``.

Example::

    keys = evaluate(model, {"contact": [...], "order": [...]}, definition, as_of=dt.datetime(2026, 10, 27, 12))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from segmenta.model import definition as d
from segmenta.model.schema import ColumnType, Model
from segmenta.model.validate import parse_condition

Row = Mapping[str, Any]
Data = Mapping[str, list[dict[str, Any]]]

T = ColumnType


def evaluate(
    model: Model,
    data: Data,
    definition: d.Definition,
    *,
    as_of: dt.datetime,
    segments: Mapping[str, set[Any]] | None = None,
) -> list[Any]:
    """The member keys of ``definition``, ascending."""
    ev = _Evaluator(model, data, as_of, segments or {})
    table = model.table(definition.audience)
    members: set[Any] = set()
    for i, group in enumerate(definition.groups):
        records = {row[table.key] for row in ev.rows(definition.audience) if ev.holds(group.where, definition.audience, row)}
        if i == 0:
            members = records
        elif group.link == "and_also":
            members = members & records
        elif group.link == "or":
            members = members | records
        else:  # but_not
            members = members - records
    if table.active is not None:
        rule = table.active
        active = {row[table.key] for row in ev.rows(definition.audience) if _same(row[rule.attribute], rule.equals)}
        members = members & active
    return sorted(members)


def _same(x: Any, wanted: Any) -> bool:
    """The active rule's equality: same value, and a bool never equals a number."""
    if x is None:
        return False
    if isinstance(x, bool) or isinstance(wanted, bool):
        return isinstance(x, bool) and isinstance(wanted, bool) and x == wanted
    return bool(x == wanted)


class _Evaluator:
    def __init__(self, model: Model, data: Data, as_of: dt.datetime, segments: Mapping[str, set[Any]]) -> None:
        self.model = model
        self.data = data
        self.as_of = as_of
        self.segments = segments

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.data.get(table, [])

    # -- walking ------------------------------------------------------------------

    def walk(self, path: tuple[str, ...], table: str, row: Row) -> tuple[str, Row] | None:
        """The record at the end of ``path`` (many-to-one steps), or None when a step has no record."""
        for step in path:
            rel = self.model.many_to_one(table, step)
            assert rel is not None, f"no many-to-one {step!r} from {table!r}"
            fk = row[rel.from_column]
            if fk is None:
                return None
            found = [r for r in self.rows(rel.to_table) if r[rel.to_column] == fk]
            if not found:  # a dangling foreign key
                return None
            assert len(found) == 1, f"{rel.to} is not unique"
            table, row = rel.to_table, found[0]
        return table, row

    def related_rows(self, table: str, row: Row, related: str, where: d.Condition | None) -> tuple[str, list[Row]]:
        """(related table, the records reached over one-to-many ``related`` that satisfy ``where``)."""
        rel = self.model.one_to_many(table, related)
        assert rel is not None, f"no one-to-many {related!r} from {table!r}"
        mine = row[rel.to_column]
        out = []
        for r in self.rows(rel.from_table):
            if r[rel.from_column] is None or mine is None or r[rel.from_column] != mine:
                continue
            if where is None or self.holds(where, rel.from_table, r):
                out.append(r)
        return rel.from_table, out

    # -- conditions ------------------------------------------------------------------

    def holds(self, cond: d.Condition, table: str, row: Row) -> bool:
        if isinstance(cond, d.All):
            return all(self.holds(c, table, row) for c in cond.items)
        if isinstance(cond, d.AnyOf):
            return any(self.holds(c, table, row) for c in cond.items)
        reached = self.walk(cond.path, table, row)
        if reached is None:
            return False
        table, row = reached
        if isinstance(cond, d.AttributeCondition):
            ctype = self.model.table(table).column(cond.attribute).type
            return attribute_holds(ctype, cond.op, row[cond.attribute], cond.value, self.as_of, cond.case_sensitive)
        if isinstance(cond, d.RelatedCondition):
            _, found = self.related_rows(table, row, cond.related, cond.where)
            return count_holds(cond.count.op, cond.count.value, len(found))
        if isinstance(cond, d.AggregateCondition):
            return self.aggregate_holds(table, row, cond.related, cond.where, cond.fn, cond.attribute, cond.op, cond.value)
        if isinstance(cond, d.MeasureCondition):
            m = self.model.measures[cond.measure]
            where = None
            if m.where is not None:
                rel = self.model.one_to_many(m.table, m.related)
                assert rel is not None
                where = parse_condition(m.where, self.model, table=rel.from_table)
            return self.aggregate_holds(table, row, m.related, where, m.aggregate.fn, m.aggregate.attribute, cond.op, cond.value)
        if isinstance(cond, d.InSegment):
            key = self.model.table(table).key
            return row[key] in self.segments.get(cond.segment, set())
        raise AssertionError(f"unknown condition {cond!r}")

    def aggregate_holds(
        self, table: str, row: Row, related: str, where: d.Condition | None, fn: str, attribute: str, op: str, value: Any
    ) -> bool:
        target, found = self.related_rows(table, row, related, where)
        ctype = self.model.table(target).column(attribute).type
        result, result_type = aggregate(fn, ctype, [r[attribute] for r in found])
        return attribute_holds(result_type, op, result, value, self.as_of, True)


# -- aggregates -------------------------------------------------------------------------


def aggregate(fn: str, ctype: ColumnType, values: list[Any]) -> tuple[Any, ColumnType]:
    """(the aggregate of ``values``, its type). Empty values (null, "") are ignored: they have no value."""
    present = [v for v in values if not is_empty(ctype, v)]
    if fn == "count_distinct":  # distinct as text compares: ignoring case
        return len({lower(v) if ctype is T.TEXT else v for v in present}), T.INTEGER
    if fn == "sum":
        return sum((Fraction(v) for v in present), Fraction(0)), ctype
    if not present:
        return None, (T.DECIMAL if fn == "avg" else ctype)
    if fn == "avg":
        return sum(Fraction(v) for v in present) / len(present), T.DECIMAL
    if fn == "min":
        return min(present), ctype
    if fn == "max":
        return max(present), ctype
    raise AssertionError(fn)


def count_holds(op: str, value: Any, n: int) -> bool:
    if op == "between":
        low, high = value
        return bool(low <= n <= high)
    return {"eq": n == value, "ne": n != value, "gt": n > value, "gte": n >= value, "lt": n < value, "lte": n <= value}[op]


# -- attribute operators -------------------------------------------------------------------


def is_empty(ctype: ColumnType, x: Any) -> bool:
    """Null, "" (text; a choice stored as "" too) or the empty set (choices)."""
    if x is None:
        return True
    if ctype in (T.TEXT, T.CHOICE):
        return x == ""
    if ctype is T.CHOICES:
        return len(x) == 0
    return False


def attribute_holds(ctype: ColumnType, op: str, x: Any, value: Any, as_of: dt.datetime, case_sensitive: bool) -> bool:
    """Whether ``x <op> value`` holds for an attribute of ``ctype``, as contract 3.1 says."""
    if op == "is_empty":
        return is_empty(ctype, x)
    if op == "is_not_empty":
        return not is_empty(ctype, x)
    if is_empty(ctype, x):
        return False  # every other operator, the negative ones too
    if ctype is T.TEXT:
        return _text(op, x, value, case_sensitive)
    if ctype in (T.INTEGER, T.DECIMAL):
        return _number(op, Fraction(x), value)
    if ctype in (T.DATE, T.DATETIME):
        return _temporal(ctype, op, x, value, as_of)
    if ctype is T.BOOLEAN:
        return {"is_true": x is True, "is_false": x is False}[op]
    if ctype is T.CHOICE:
        return {"eq": lambda: x == value, "ne": lambda: x != value, "in": lambda: x in value, "not_in": lambda: x not in value}[
            op
        ]()
    if ctype is T.CHOICES:
        return {
            "contains_any": lambda: any(v in x for v in value),
            "contains_all": lambda: all(v in x for v in value),
            "not_contains_any": lambda: not any(v in x for v in value),
        }[op]()
    raise AssertionError(ctype)


def lower(s: str) -> str:
    """Each character in lower case on its own: "ΣΑΣ" is "σασ" (str.lower would end it in "ς"), "İ" is "i"."""
    return "".join("i" if ch == "İ" else ch.lower() for ch in s)


def _text(op: str, x: str, value: Any, case_sensitive: bool) -> bool:
    def fold(s: str) -> str:
        return s if case_sensitive else lower(s)

    s = fold(x)
    if op in ("in", "not_in"):
        inside = s in [fold(v) for v in value]
        return inside if op == "in" else not inside
    v = fold(value)
    positive = {
        "eq": s == v,
        "contains": v in s,
        "starts_with": s.startswith(v),
        "ends_with": s.endswith(v),
    }
    if op == "ne":
        return s != v
    if op.startswith("not_"):
        return not positive[op.removeprefix("not_")]
    return positive[op]


def _number(op: str, x: Fraction, value: Any) -> bool:
    if op in ("between", "not_between"):
        low, high = Fraction(value[0]), Fraction(value[1])
        inside = low <= x <= high
        return inside if op == "between" else not inside
    if op in ("in", "not_in"):
        inside = any(x == Fraction(v) for v in value)
        return inside if op == "in" else not inside
    v = Fraction(value)
    return {"eq": x == v, "ne": x != v, "gt": x > v, "gte": x >= v, "lt": x < v, "lte": x <= v}[op]


def _temporal(ctype: ColumnType, op: str, x: Any, value: Any, as_of: dt.datetime) -> bool:
    if op in ("in_last", "not_in_last", "in_next"):
        if ctype is T.DATE:
            moment = dt.datetime(x.year, x.month, x.day)  # a date is its midnight
            now = dt.datetime(as_of.year, as_of.month, as_of.day)  # date(as_of)
        else:
            moment, now = x, as_of
        if op == "in_next":
            return now <= moment <= move(now, value.unit, value.n)
        inside = move(now, value.unit, -value.n) <= moment <= now
        return inside if op == "in_last" else not inside
    day = x.date() if isinstance(x, dt.datetime) else x  # calendar dates: a datetime's date part
    if op == "between":
        return bool(value[0] <= day <= value[1])
    return {
        "on": day == value,
        "not_on": day != value,
        "before": day < value,
        "after": day > value,
        "on_or_before": day <= value,
        "on_or_after": day >= value,
    }[op]


# -- calendar arithmetic (written out here, not borrowed from the compiler) ---------------------

_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """``moment`` plus ``months`` calendar months, clamped to the month's end (31 Mar - 1 month = 28/29 Feb)."""
    year, month = moment.year, moment.month + months
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    return moment.replace(year=year, month=month, day=min(moment.day, _days_in(year, month)))


def move(moment: dt.datetime, unit: str, n: int) -> dt.datetime:
    """``moment`` plus ``n`` units (negative: back in time); past the calendar's ends, its first or last instant."""
    try:
        if unit == "hours":
            return moment + dt.timedelta(hours=n)
        if unit == "days":
            return moment + dt.timedelta(days=n)
        if unit == "weeks":
            return moment + dt.timedelta(days=7 * n)
        if unit == "months":
            return add_months(moment, n)
        if unit == "years":
            return add_months(moment, 12 * n)
    except (OverflowError, ValueError):
        return dt.datetime.max if n > 0 else dt.datetime.min
    raise AssertionError(unit)
