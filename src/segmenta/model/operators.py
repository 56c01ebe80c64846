"""Which operators fit which column type, and what value each takes (contract 3.1)."""

from __future__ import annotations

from segmenta.model.schema import ColumnType

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
