"""Shaping data for answers: the model as the builder needs it, rows with PII masked or left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from segmenta.errors import Problem, RejectedInput
from segmenta.model.operators import COUNT_OPERATORS, OPERATORS, WINDOW_UNITS
from segmenta.model.schema import Model, hint
from segmenta.model.validate import aggregate_result_column
from segmenta.services.csvimport import FORMULA_START
from segmenta.workspace import PII_MASK

AGGREGATES = ("sum", "avg", "min", "max", "count_distinct")


def model_json(model: Model) -> dict[str, Any]:
    """Tables with columns, paths (many-to-one), related (one-to-many), measures; operators per type."""
    operators = {t.value: list(ops) for t, ops in OPERATORS.items()}
    tables: dict[str, Any] = {}
    for name, table in model.tables.items():
        measures = {}
        for mname, m in model.measures_of(name).items():
            rel = model.one_to_many(name, m.related)
            col = model.table(rel.from_table).columns.get(m.aggregate.attribute) if rel else None
            result = aggregate_result_column(m.aggregate.fn, col).type.value if col is not None else None
            measures[mname] = {
                "related": m.related,
                "fn": m.aggregate.fn,
                "attribute": m.aggregate.attribute,
                "result_type": result,
                "description": m.description,
            }
        types = {col.type.value for col in table.columns.values()}
        tables[name] = {
            "key": table.key,
            "label": table.label or name,
            "columns": {
                c: {
                    "type": col.type.value,
                    "choices": list(col.choices) if col.choices else None,
                    "pii": col.pii,
                    "calculated": col.calculated,
                    "label": col.label or c,
                    "description": col.description,
                }
                for c, col in table.columns.items()
            },
            "paths": [{"name": r.name, "table": r.to_table} for r in model.relationships if r.from_table == name],
            "related": [{"name": r.reverse, "table": r.from_table} for r in model.relationships if r.to_table == name],
            "measures": measures,
            "operators": {t: operators[t] for t in sorted(types)},
        }
    return {
        "tables": tables,
        "operators": operators,
        "count_operators": list(COUNT_OPERATORS),
        "aggregate_functions": list(AGGREGATES),
        "window_units": list(WINDOW_UNITS),
    }


def choose_columns(model: Model, table: str, requested: Sequence[str] | None, *, where: str = "/columns") -> list[str]:
    """``requested`` checked against what ``model`` (the user's visible model) has; default: every column."""
    cols = model.table(table).columns
    if not requested:
        return list(cols)
    unknown = [c for c in requested if c not in cols]
    if unknown:
        raise RejectedInput([Problem(where, f"{table!r} has no column {c!r}{hint(c, cols)}") for c in unknown])
    key = model.table(table).key
    unique = list(dict.fromkeys(requested))  # a column asked for twice is shown once
    return ([key] if key not in unique else []) + unique


def mask_rows(model: Model, table: str, columns: Sequence[str], rows: list[dict[str, Any]], *, show_pii: bool) -> list[str]:
    """Replace PII values by ``***`` in place unless ``show_pii``; the masked column names."""
    if show_pii:
        return []
    masked = [c for c in columns if model.table(table).column(c).pii]
    for row in rows:
        for c in masked:
            if row.get(c) is not None:
                row[c] = PII_MASK
    return masked


def split_columns(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [c.strip() for c in text.split(",") if c.strip()] or None


def csv_cell(value: Any) -> Any:
    """A value as an exported CSV cell: text that would start a formula gets a leading ', other values stay.

    Only text is touched: a negative number stays a number. A ``choices`` list is written as
    the loader reads it (values separated by ``;``).
    """
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join("" if v is None else str(v) for v in value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def key_literal(value: Any) -> exp.Expr:
    """A literal for a key value (an integer stays a number, anything else is a string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))
