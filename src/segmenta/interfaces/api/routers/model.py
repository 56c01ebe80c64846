"""The data model and table rows (PII left out for restricted users, masked for others unless asked)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, UploadFile
from sqlglot import exp

from segmenta.errors import DataError, NotFound, PermissionDenied, Problem, RejectedInput
from segmenta.interfaces.api.auth import LoadTable, Read
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.views import choose_columns, mask_rows, model_json, split_columns
from segmenta.model.operators import vocabulary
from segmenta.model.schema import ColumnType, hint

router = APIRouter(prefix="/api", tags=["model"], responses=RESPONSES)


@router.get("/model")
def get_model(ctx: Read) -> dict[str, Any]:
    """What the builder offers: tables, columns, paths, related, measures, and the whole vocabulary.

    ``vocabulary`` (operators per type, their labels and value shapes, count operators, window units,
    aggregate functions, links) is :func:`segmenta.model.operators.vocabulary`: the builder keeps no copy.
    Each table at the many end of a relationship carries ``rows`` (how many it holds now), so a new
    related block can start from the busiest relationship; the others are not counted.
    """
    out = model_json(ctx.model)
    out["vocabulary"] = vocabulary()
    many = {r.from_table for r in ctx.model.relationships}
    for name, table in out["tables"].items():
        for mname, spec in table["measures"].items():
            spec["label"] = ctx.model.measures[mname].label or mname
        if name in many:
            table["rows"] = _row_count(ctx, name)
    return out


def _row_count(ctx: Any, table: str) -> int:
    q = exp.select(exp.Count(this=exp.Star())).from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
    return int(ctx.ws.engine.run(q).column(0)[0].as_py())


def _table(ctx: Any, table: str) -> None:
    if table not in ctx.model.tables:
        raise NotFound([Problem(table, f"unknown table{hint(table, ctx.model.tables)}; tables: {', '.join(ctx.model.tables)}")])


@router.get("/tables/{table}/rows")
def table_rows(
    ctx: Read,
    table: str,
    limit: int = Query(20, ge=0, le=1000),
    offset: int = Query(0, ge=0),
    columns: str | None = None,
    show_pii: bool = False,
) -> dict[str, Any]:
    """A page of a table's rows by key; ``columns`` comma-separated (default all the user may see)."""
    _table(ctx, table)
    chosen = choose_columns(ctx.model, table, split_columns(columns))
    key = ctx.model.table(table).key
    q = (
        exp.select(*[exp.column(c, quoted=True) for c in chosen])
        .from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
        .order_by(exp.column(key, quoted=True))
        .limit(limit)
        .offset(offset)
    )
    rows = ctx.ws.engine.run(q).to_pylist()
    total = (
        ctx.ws.engine.run(exp.select(exp.Count(this=exp.Star())).from_(exp.Table(this=exp.to_identifier(table, quoted=True))))
        .column(0)[0]
        .as_py()
    )
    masked = mask_rows(ctx.model, table, chosen, rows, show_pii=show_pii and not ctx.restricted)
    return {"table": table, "total": total, "columns": chosen, "rows": rows, "masked": masked}


def _problem(ctx: Any, table: str, problem: Problem, tmp: str, upload: str) -> Problem:
    """The upload's name instead of the server's temporary path; no PII value echoed to a restricted user."""
    where = problem.where.replace(tmp, upload).replace(Path(tmp).name, upload)
    if ctx.restricted:
        for name, col in ctx.service.model.table(table).columns.items():
            if col.pii and problem.message.startswith(f"column {name!r}:"):
                return Problem(where, f"column {name!r}: a value does not fit the column (not shown: the column holds PII)")
    return Problem(where, problem.message)


@router.post("/tables/{table}/load")
def load_table(ctx: LoadTable, table: str, file: UploadFile) -> dict[str, Any]:
    """Replace a table's rows with an uploaded .csv or .parquet file (checked whole first, as ``segmenta load``)."""
    _table(ctx, table)
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise RejectedInput([Problem("file", f"must be a .csv or .parquet file, not {file.filename!r}")])
    with tempfile.TemporaryDirectory(prefix="segmenta-load-") as tmp:
        path = Path(tmp) / f"{table}{suffix}"
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        try:
            rows = ctx.ws.load(table, path)
        except DataError as exc:
            raise DataError([_problem(ctx, table, p, str(path), file.filename or "file") for p in exc.problems]) from None
    ctx.audit_detail = f"{rows} rows"
    return {"table": table, "rows": rows}


#: At most this many suggestions per request.
VALUES_LIMIT = 50


@router.get("/tables/{table}/columns/{column}/values")
def column_values(
    ctx: Read,
    table: str,
    column: str,
    prefix: str = Query("", max_length=200),
    limit: int = Query(10, ge=1, le=VALUES_LIMIT),
) -> dict[str, Any]:
    """The most frequent distinct values of a text column, those beginning with ``prefix`` (any case).

    For the builder's value suggestions. PII columns are refused (403), for every user: their values
    are never suggested. Identifiers come only from the model; the prefix is a literal in a sqlglot tree.
    """
    _table(ctx, table)
    full = ctx.service.model.table(table).columns
    if column in full and full[column].pii:
        raise PermissionDenied(f"{table}.{column} holds PII: its values are never suggested")
    cols = ctx.model.table(table).columns
    if column not in cols:
        raise NotFound([Problem(f"{table}.{column}", f"table {table!r} has no column {column!r}{hint(column, cols)}")])
    if cols[column].type is not ColumnType.TEXT:
        raise RejectedInput(
            [Problem(f"{table}.{column}", f"values are suggested for text columns; {column!r} is {cols[column].type.value}")]
        )
    col = exp.column(column, quoted=True)
    where = exp.and_(
        exp.Not(this=exp.Is(this=col.copy(), expression=exp.Null())), exp.NEQ(this=col.copy(), expression=exp.Literal.string(""))
    )
    if prefix:
        head = exp.Substring(this=exp.Lower(this=col.copy()), start=exp.Literal.number(1), length=exp.Literal.number(len(prefix)))
        where = exp.and_(where, exp.EQ(this=head, expression=exp.Literal.string(prefix.lower())))
    n = exp.Count(this=exp.Star())
    q = (
        exp.select(exp.alias_(col.copy(), "value", quoted=True), exp.alias_(n, "n", quoted=True))
        .from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
        .where(where)
        .group_by(col.copy())
        .order_by(exp.Ordered(this=n.copy(), desc=True), exp.Ordered(this=col.copy()))
        .limit(limit)
    )
    rows = ctx.ws.engine.run(q).to_pylist()
    return {
        "table": table,
        "column": column,
        "prefix": prefix,
        "values": [{"value": r["value"], "count": int(r["n"])} for r in rows],
    }
