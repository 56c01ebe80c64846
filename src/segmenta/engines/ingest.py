"""Read a CSV or Parquet file into a typed Arrow table that fits the model, or reject it whole.

The conversion runs in the local engine (``segmenta.engines.local_engine``: a private
in-memory DuckDB) over the file's text (CSV) or columns (Parquet), so that every engine
stores exactly the same values. The conversion templates are written in that engine's SQL.
Nothing is stored here: the caller hands the result to the data engine, which replaces the
table in one transaction.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from segmenta.engines import local_engine
from segmenta.engines.base import Engine
from segmenta.engines.sqltypes import sql_type
from segmenta.errors import DataError, Problem
from segmenta.model.schema import Column, ColumnType, Table, hint

MAX_PROBLEMS = 20

# One template per type: ``:v`` is the raw value. Each yields the typed value, or NULL
# when the raw value is not acceptable (then the row is reported).
_TEXT_CONVERSIONS: dict[ColumnType, str] = {
    ColumnType.TEXT: ":v",
    ColumnType.INTEGER: r"CASE WHEN regexp_full_match(trim(:v), '[+-]?[0-9]+') THEN TRY_CAST(trim(:v) AS BIGINT) END",
    ColumnType.DECIMAL: (
        r"CASE WHEN regexp_full_match(trim(:v), '[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?') "
        r"THEN TRY_CAST(trim(:v) AS DECIMAL(38, 10)) END"
    ),
    ColumnType.BOOLEAN: "CASE lower(trim(:v)) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END",
    ColumnType.DATE: r"CASE WHEN regexp_full_match(trim(:v), '[0-9]{4}-[0-9]{2}-[0-9]{2}') THEN TRY_CAST(trim(:v) AS DATE) END",
    ColumnType.DATETIME: (
        r"CASE WHEN regexp_full_match(trim(:v), '[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
        r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?') THEN CAST(TRY_CAST(trim(:v) AS TIMESTAMPTZ) AS TIMESTAMP) END"
    ),
    ColumnType.CHOICE: "CASE WHEN list_contains(:choices, trim(:v)) THEN trim(:v) END",
    ColumnType.CHOICES: (
        "CASE WHEN len(list_filter(list_filter(list_transform(string_split(:v, ';'), x -> trim(x)), x -> x <> ''),"
        " x -> NOT list_contains(:choices, x))) = 0"
        " THEN list_filter(list_transform(string_split(:v, ';'), x -> trim(x)), x -> x <> '') END"
    ),
}

_EXPECTED: dict[ColumnType, str] = {
    ColumnType.INTEGER: "a whole number",
    ColumnType.DECIMAL: "a number such as 12.50",
    ColumnType.BOOLEAN: "true or false",
    ColumnType.DATE: "an ISO 8601 date such as 2026-10-27",
    ColumnType.DATETIME: "an ISO 8601 date-time such as 2026-10-27T12:00:00 (UTC unless it has an offset)",
}


def read_table_file(path: str | Path, name: str, table: Table) -> pa.Table:
    """The rows of ``path`` as an Arrow table with the model's types; raises :class:`DataError` listing bad rows."""
    path = Path(path)
    if not path.is_file():
        raise DataError([Problem(str(path), "no such file")])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw, header = _read_csv_text(path)
        return _convert(raw, header, name, table, path, text=True)
    if suffix in (".parquet", ".pq"):
        try:
            raw = pq.read_table(path)
        except Exception as exc:
            raise DataError([Problem(str(path), f"not a readable Parquet file: {exc}")]) from None
        return _convert(raw, raw.column_names, name, table, path, text=False)
    raise DataError([Problem(str(path), f"unknown file type {suffix!r}; load takes .csv or .parquet")])


def _read_csv_text(path: Path) -> tuple[pa.Table, list[str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise DataError(
            [Problem(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8")]
        ) from None
    if not header or all(not h.strip() for h in header):
        raise DataError([Problem(str(path), "the file has no header row; the first row must name the columns")])
    header = [h.strip() for h in header]
    try:
        raw = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8", column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc):  # bad bytes past the header
            raise DataError([Problem(str(path), f"not UTF-8 text ({exc}); save the file as UTF-8")]) from None
        raise DataError([Problem(str(path), f"malformed CSV: {exc}")]) from None
    return raw, header


def _convert(raw: pa.Table, header: list[str], name: str, table: Table, path: Path, *, text: bool) -> pa.Table:
    problems: list[Problem] = []
    seen: set[str] = set()
    for h in header:
        if h in seen:
            problems.append(Problem(str(path), f"column {h!r} appears twice in the header"))
        seen.add(h)
        if h not in table.columns:
            problems.append(
                Problem(
                    str(path),
                    f"column {h!r} is not an attribute of {name!r}{hint(h, table.columns)}; columns: {', '.join(table.columns)}",
                )
            )
    if table.key not in header:
        problems.append(Problem(str(path), f"the key column {table.key!r} of {name!r} is missing"))
    if problems:
        raise DataError(problems)

    local = local_engine()
    try:
        return _checked(local, raw, header, name, table, path, text=text)
    finally:
        local.close()


def _checked(local: Engine, raw: pa.Table, header: list[str], name: str, table: Table, path: Path, *, text: bool) -> pa.Table:
    """The typed rows of ``raw``, converted and checked in ``local``; raises :class:`DataError` listing bad rows."""
    problems: list[Problem] = []
    # Row numbers: the Arrow table keeps file order.
    raw = raw.append_column("__row", pa.array(range(1, raw.num_rows + 1), pa.int64()))
    raw_table = local.stage("raw", raw)
    selects: list[exp.Expr] = []
    for cname, col in table.columns.items():
        if cname in header:
            conv = _conversion(cname, col, raw.schema.field(cname).type, text=text, path=path)
        else:
            conv = exp.cast(exp.Null(), sql_type(col.type))
        selects.append(exp.alias_(conv, cname, quoted=True))
    typed_query = exp.select(*selects, exp.column("__row")).from_(raw_table)
    local.execute([exp.Create(this=exp.to_identifier("typed"), kind="VIEW", expression=typed_query)])

    for cname, col in table.columns.items():
        if cname not in header:
            continue
        rejected = exp.and_(
            exp.column(cname, table="r", quoted=True).is_(exp.Null()).not_(),
            exp.column(cname, table="t", quoted=True).is_(exp.Null()),
        )
        if col.type is ColumnType.CHOICE and not text:  # a Parquet "" is no choice: stored as null, like an empty CSV cell
            rejected = exp.and_(
                rejected, exp.NEQ(this=exp.column(cname, table="r", quoted=True), expression=exp.Literal.string(""))
            )
        bad = (
            exp.select(exp.column("__row", table="t"), exp.column(cname, table="r", quoted=True))
            .from_(exp.alias_(exp.to_table("typed"), "t"))
            .join(exp.alias_(exp.to_table("raw"), "r"), on="t.__row = r.__row")
            .where(rejected)
            .order_by("t.__row")
            .limit(3)
        )
        for row, value in _rows(local, bad):
            problems.append(
                Problem(_where(path, row, text), f"column {cname!r}: {_show(value)} is not {_expected(col, text=text)}")
            )
    key = exp.column(table.key, quoted=True)
    nulls = exp.select(exp.column("__row")).from_("typed").where(key.is_(exp.Null())).order_by("__row").limit(3)
    for (row,) in _rows(local, nulls):
        if not any(p.where == _where(path, row, text) for p in problems):
            problems.append(Problem(_where(path, row, text), f"column {table.key!r}: the key is empty; every record needs a key"))
    dupes = sqlglot.parse_one(
        "SELECT k, min(__row), max(__row) FROM (SELECT :key AS k, __row FROM typed) WHERE k IS NOT NULL GROUP BY k HAVING count(*) > 1 ORDER BY 2 LIMIT 3",
        dialect="duckdb",
    )
    dupes = exp.replace_placeholders(dupes, key=key)
    for k, first, second in _rows(local, dupes):
        problems.append(
            Problem(
                _where(path, second, text),
                f"column {table.key!r}: key {k} repeats {_where(path, first, text, bare=True)}; keys must be unique",
            )
        )
    if problems:
        raise DataError(problems[:MAX_PROBLEMS])
    rows = exp.select(exp.Star(except_=[exp.column("__row")])).from_("typed").order_by("__row")
    return local.run(rows)


def _rows(engine: Engine, query: exp.Expr) -> list[tuple[Any, ...]]:
    """A small result (the first bad rows) as tuples."""
    result = engine.run(query)
    return list(zip(*(c.to_pylist() for c in result.columns), strict=True))


def _conversion(cname: str, col: Column, source: pa.DataType, *, text: bool, path: Path) -> exp.Expr:
    v = exp.column(cname, quoted=True)
    choices = exp.Array(expressions=[exp.Literal.string(c) for c in (col.choices or ())])
    template = _TEXT_CONVERSIONS[col.type] if text else _parquet_conversion(cname, col, source, path)
    tree = sqlglot.parse_one(template, dialect="duckdb") if isinstance(template, str) else template
    return exp.replace_placeholders(tree, v=v, choices=choices)


def _parquet_conversion(cname: str, col: Column, source: pa.DataType, path: Path) -> str | exp.Expr:
    t = col.type
    ok = {
        ColumnType.TEXT: pa.types.is_string(source) or pa.types.is_large_string(source),
        ColumnType.CHOICE: pa.types.is_string(source) or pa.types.is_large_string(source),
        ColumnType.INTEGER: pa.types.is_integer(source),
        ColumnType.DECIMAL: pa.types.is_integer(source) or pa.types.is_floating(source) or pa.types.is_decimal(source),
        ColumnType.BOOLEAN: pa.types.is_boolean(source),
        ColumnType.DATE: pa.types.is_date(source),
        ColumnType.DATETIME: pa.types.is_timestamp(source) or pa.types.is_date(source),
        ColumnType.CHOICES: (pa.types.is_list(source) or pa.types.is_large_list(source))
        and (pa.types.is_string(source.value_type) or pa.types.is_large_string(source.value_type)),
    }[t]
    if not ok:
        want = {ColumnType.CHOICES: "a list of strings", ColumnType.CHOICE: "string", ColumnType.TEXT: "string"}.get(t, t.value)
        raise DataError(
            [Problem(str(path), f"column {cname!r} is stored as {source} but the model says {t.value}; expected {want}")]
        )
    if t is ColumnType.DATETIME and pa.types.is_timestamp(source) and source.tz is not None:
        return "CAST(CAST(:v AS TIMESTAMPTZ) AS TIMESTAMP)"
    if t is ColumnType.CHOICE:
        return "CASE WHEN :v = '' THEN NULL WHEN list_contains(:choices, :v) THEN :v ELSE NULL END"
    if t is ColumnType.CHOICES:
        return "CASE WHEN len(list_filter(:v, x -> x IS NULL OR NOT list_contains(:choices, x))) = 0 THEN :v END"
    return exp.cast(exp.Placeholder(this="v"), sql_type(t))


def _where(path: Path, row: int, text: bool, *, bare: bool = False) -> str:
    loc = f"data row {row}" + (f" (line {row + 1})" if text else "")
    return loc if bare else f"{path.name}: {loc}"


def _expected(col: Column, *, text: bool = True) -> str:
    if col.type is ColumnType.CHOICE:
        return "one of the choices: " + ", ".join(col.choices or ())
    if col.type is ColumnType.CHOICES:
        listed = "a ';'-separated list" if text else "a list"
        return f"{listed} of the choices: " + ", ".join(col.choices or ())
    return _EXPECTED.get(col.type, col.type.value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else repr(str(value))


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.TEXT: pa.string(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.DECIMAL: pa.decimal128(38, 10),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.DATETIME: pa.timestamp("us"),
    ColumnType.CHOICE: pa.string(),
    ColumnType.CHOICES: pa.list_(pa.string()),
}


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a model table, as loaders and generators produce it."""
    return pa.schema([pa.field(c, _ARROW_TYPES[col.type]) for c, col in table.columns.items()])
