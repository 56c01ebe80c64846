"""The one map from model column types to SQL types, engine-neutral.

Every table segmenta creates (``load``, staged data, membership and history) takes its column
types from here, as sqlglot types; each engine renders its own spelling (``TEXT`` is VARCHAR
in DuckDB, TEXT in PostgreSQL, STRING in Spark; ``ARRAY<TEXT>`` is ``VARCHAR[]``, ``TEXT[]``,
``ARRAY<STRING>``), so a new engine adds no map of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from segmenta.model.schema import ColumnType

if TYPE_CHECKING:
    import pyarrow as pa  # only for arrow_column_type, imported where it runs

#: How each model type is stored (sqlglot's spelling, rendered per dialect).
SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.TEXT: "TEXT",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.DECIMAL: "DECIMAL(38, 10)",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMP",
    ColumnType.CHOICE: "TEXT",
    ColumnType.CHOICES: "ARRAY<TEXT>",
}


def sql_type(column_type: ColumnType) -> exp.DataType:
    """The SQL type that stores ``column_type`` (a fresh tree: callers may attach it anywhere)."""
    return exp.DataType.build(SQL_TYPES[column_type])


def arrow_column_type(arrow_type: pa.DataType) -> ColumnType:
    """The model type that stores values of ``arrow_type`` (staged data: keys, addresses, counts)."""
    import pyarrow as pa

    checks = [
        (pa.types.is_integer, ColumnType.INTEGER),
        (lambda t: pa.types.is_decimal(t) or pa.types.is_floating(t), ColumnType.DECIMAL),
        (pa.types.is_boolean, ColumnType.BOOLEAN),
        (pa.types.is_date, ColumnType.DATE),
        (pa.types.is_timestamp, ColumnType.DATETIME),
        (lambda t: pa.types.is_list(t) or pa.types.is_large_list(t), ColumnType.CHOICES),
    ]
    return next((column_type for check, column_type in checks if check(arrow_type)), ColumnType.TEXT)
