"""Which operators fit which column type, and what value each takes (contract 3.1)."""

from __future__ import annotations

from typing import get_args

from segmenta.model.schema import AggregateFn, ColumnType

T = ColumnType

NO_VALUE = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
LIST_VALUE = frozenset({"in", "not_in", "contains_any", "contains_all", "not_contains_any"})
RANGE_VALUE = frozenset({"between", "not_between"})
WINDOW_VALUE = frozenset({"in_last", "not_in_last", "in_next"})

_EMPTY = ("is_empty", "is_not_empty")
_NUMERIC = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "not_between", "in", "not_in", *_EMPTY)
_TEMPORAL = (
    "on",
    "not_on",
    "before",
    "after",
    "on_or_before",
    "on_or_after",
    "between",
    "in_last",
    "not_in_last",
    "in_next",
    *_EMPTY,
)
OPERATORS: dict[ColumnType, tuple[str, ...]] = {
    T.TEXT: (
        "eq",
        "ne",
        "contains",
        "not_contains",
        "starts_with",
        "not_starts_with",
        "ends_with",
        "not_ends_with",
        "in",
        "not_in",
        *_EMPTY,
    ),
    T.INTEGER: _NUMERIC,
    T.DECIMAL: _NUMERIC,
    T.DATE: _TEMPORAL,
    T.DATETIME: _TEMPORAL,
    T.BOOLEAN: ("is_true", "is_false", *_EMPTY),
    T.CHOICE: ("eq", "ne", "in", "not_in", *_EMPTY),
    T.CHOICES: ("contains_any", "contains_all", "not_contains_any", *_EMPTY),
}

COUNT_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
WINDOW_UNITS = ("hours", "days", "weeks", "months", "years")

# -- the builder's vocabulary: one place for every word and value shape it offers -------------

#: How each operator reads to a person (the web builder shows these, never the keys).
OPERATOR_LABELS: dict[str, str] = {
    "eq": "equals",
    "ne": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "begins with",
    "not_starts_with": "does not begin with",
    "ends_with": "ends with",
    "not_ends_with": "does not end with",
    "in": "is any of",
    "not_in": "is none of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "greater than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "between": "between",
    "not_between": "not between",
    "on": "on",
    "not_on": "not on",
    "before": "before",
    "after": "after",
    "on_or_before": "on or before",
    "on_or_after": "on or after",
    "in_last": "in the last",
    "not_in_last": "not in the last",
    "in_next": "in the next",
    "is_true": "is yes",
    "is_false": "is no",
    "contains_any": "contains any of",
    "contains_all": "contains all of",
    "not_contains_any": "contains none of",
}


def value_shape(op: str) -> str:
    """What ``value`` an operator takes: none, scalar, list, range ([low, high]) or window ({unit: N})."""
    if op in NO_VALUE:
        return "none"
    if op in LIST_VALUE:
        return "list"
    if op in RANGE_VALUE:
        return "range"
    if op in WINDOW_VALUE:
        return "window"
    return "scalar"


#: The count comparison a new related block starts with ("contains data"), contract 3.2.
DEFAULT_COUNT = {"op": "gte", "value": 1}
COUNT_OPERATOR_LABELS: dict[str, str] = {
    "eq": "exactly",
    "ne": "not exactly",
    "gt": "more than",
    "gte": "at least",
    "lt": "fewer than",
    "lte": "at most",
    "between": "between",
}
WINDOW_UNIT_LABELS: dict[str, str] = {"hours": "hours", "days": "days", "weeks": "weeks", "months": "months", "years": "years"}
AGGREGATE_FUNCTIONS: tuple[str, ...] = get_args(AggregateFn)
AGGREGATE_LABELS: dict[str, str] = {
    "sum": "total",
    "avg": "average",
    "min": "lowest",
    "max": "highest",
    "count_distinct": "number of different",
}
#: How groups combine, left to right (contract section 2); the first group has none.
LINKS = ("and_also", "or", "but_not")
LINK_LABELS: dict[str, str] = {"and_also": "AND ALSO", "or": "OR", "but_not": "BUT NOT"}
CONDITION_KINDS = ("attribute", "related", "aggregate", "measure", "in_segment")


def vocabulary() -> dict[str, object]:
    """Everything the builder needs to offer operators and values, as JSON (GET /api/model ``vocabulary``)."""
    from segmenta.model.schema import Column, aggregate_type_problem
    from segmenta.model.validate import aggregate_result_column  # validate imports this module

    def result_type(fn: str) -> str:
        kinds = {aggregate_result_column(fn, Column(type=t)).type for t in (T.INTEGER, T.DECIMAL, T.DATE)}
        return "same" if len(kinds) > 1 else kinds.pop().value

    every = sorted({op for ops in OPERATORS.values() for op in ops}, key=list(OPERATOR_LABELS).index)
    return {
        "operators": {t.value: list(ops) for t, ops in OPERATORS.items()},
        "operator_labels": {op: OPERATOR_LABELS[op] for op in every},
        "value_shapes": {op: value_shape(op) for op in every},
        "count_operators": list(COUNT_OPERATORS),
        "count_operator_labels": {op: COUNT_OPERATOR_LABELS[op] for op in COUNT_OPERATORS},
        "default_count": dict(DEFAULT_COUNT),
        "window_units": list(WINDOW_UNITS),
        "window_unit_labels": {u: WINDOW_UNIT_LABELS[u] for u in WINDOW_UNITS},
        "aggregate_functions": list(AGGREGATE_FUNCTIONS),
        "aggregate_labels": {f: AGGREGATE_LABELS[f] for f in AGGREGATE_FUNCTIONS},
        "aggregate_column_types": {f: [t.value for t in T if aggregate_type_problem(f, t) is None] for f in AGGREGATE_FUNCTIONS},
        "aggregate_result_types": {f: result_type(f) for f in AGGREGATE_FUNCTIONS},
        "links": list(LINKS),
        "link_labels": {k: LINK_LABELS[k] for k in LINKS},
        "condition_kinds": list(CONDITION_KINDS),
    }
