"""The data model and table rows (PII left out for restricted users, masked for others unless asked)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, UploadFile
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from sqlglot import exp

from segmenta.errors import DataError, NotFound, PermissionDenied, Problem, RejectedInput
from segmenta.interfaces.api.auth import LoadTable, Read
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import key_is_pii
from segmenta.interfaces.api.views import choose_columns, mask_rows, model_json, split_columns
from segmenta.model.operators import vocabulary
from segmenta.model.schema import ColumnType, Table, hint

router = APIRouter(prefix="/api", tags=["model"], responses=RESPONSES)


@router.get("/model")
def get_model(ctx: Read) -> dict[str, Any]:
    """What the builder offers: tables, columns, paths, related, measures, and the whole vocabulary.

    ``vocabulary`` (operators per type, their labels and value shapes, count operators, window units,
    aggregate functions, links) is :func:`segmenta.model.operators.vocabulary`: the builder keeps no copy.
    Each table at the many end of a relationship carries ``rows`` (how many it held when last
    counted: at most :data:`ROW_COUNT_TTL_S` ago, or since a load through the API), so a new related
    block can start from the busiest relationship; the others are not counted.
    """
    out = model_json(ctx.model)
    out["vocabulary"] = vocabulary()
    many = {r.from_table for r in ctx.model.relationships}
    counts = _row_counts(ctx, sorted(many & set(out["tables"])))
    for name, table in out["tables"].items():
        for mname, spec in table["measures"].items():
            spec["label"] = ctx.model.measures[mname].label or mname
        if name in many:
            table["rows"] = counts[name]
    return out


#: How long the builder's row counts are reused (seconds): the model loads on every builder visit,
#: and counting every many-side table each time is a full scan of the biggest tables.
ROW_COUNT_TTL_S = 300.0


@dataclass
class _Counts:
    """One service's (one workspace's) cached row counts; ``generation`` moves on at every load."""

    when: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    generation: int = 0


_COUNTS: weakref.WeakKeyDictionary[Any, _Counts] = weakref.WeakKeyDictionary()
_COUNTS_LOCK = threading.Lock()


def _row_counts(ctx: Any, tables: list[str]) -> dict[str, int]:
    now = time.monotonic()
    with _COUNTS_LOCK:
        entry = _COUNTS.setdefault(ctx.service, _Counts())
        if now - entry.when >= ROW_COUNT_TTL_S:
            entry.when, entry.rows = now, {}
        known, generation, when = dict(entry.rows), entry.generation, entry.when
    missing = {t: _row_count(ctx, t) for t in tables if t not in known}
    if missing:
        with _COUNTS_LOCK:
            # Not when a load came in meanwhile (its counts may be from before it), nor into a newer entry.
            if entry.generation == generation and entry.when == when:
                entry.rows.update(missing)
    return {**known, **missing}


def forget_row_counts(service: Any) -> None:
    """A table's rows changed through this service: count afresh on the next model request."""
    with _COUNTS_LOCK:
        entry = _COUNTS.setdefault(service, _Counts())
        entry.when, entry.rows, entry.generation = 0.0, {}, entry.generation + 1


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
    offset: int = Query(0, ge=0, le=2**62),
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
        finally:
            forget_row_counts(ctx.service)
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

    For the builder's value suggestions. PII columns are never suggested: refused (403) to users who
    may see them, and unknown (404, like a misspelt name) to PII-restricted users, who never learn
    which names are PII columns. Identifiers come only from the model; the prefix is a literal in a sqlglot tree.
    """
    _table(ctx, table)
    cols = ctx.model.table(table).columns  # a restricted user's has no PII column: one is as unknown as a typo (404)
    if column not in cols:
        raise NotFound([Problem(f"{table}.{column}", f"table {table!r} has no column {column!r}{hint(column, cols)}")])
    if cols[column].pii:
        raise PermissionDenied(f"{table}.{column} holds PII: its values are never suggested")
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


class Field(BaseModel):
    """One thing to look up per record: an attribute along a many-to-one ``path``, a ``measure``,
    or the ``attribute`` of the latest ``related`` one-to-many record (by :func:`latest_column`;
    the greatest value, labelled "max", when that table has no date or datetime column)."""

    model_config = ConfigDict(extra="forbid")
    path: list[str] = []
    attribute: str | None = None
    measure: str | None = None
    related: str | None = None


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[int | str] = PydField(max_length=200)
    fields: list[Field] = PydField(max_length=12)


#: What a lookup shows for a PII value: never the value itself.
_MASK = "***"


@router.post("/tables/{table}/lookup")
def lookup(ctx: Read, table: str, body: Lookup) -> dict[str, Any]:
    """Values of a few records (by key) that the table's own columns do not hold: attributes along paths
    (account's industry), measures without a filter (total spend), the latest value over related
    records (last interaction). The builder shows them beside the member sample. PII values are masked.
    """
    _table(ctx, table)
    if ctx.restricted and key_is_pii(ctx.service.model, table):
        # The answer would confirm which guessed keys are records: refused before any data is read.
        key = ctx.service.model.table(table).key
        raise PermissionDenied(f"a lookup takes {table} keys, and {table}.{key} is PII, which your account may not use")
    model = ctx.model
    key = model.table(table).key
    ktype = model.table(table).columns[key].type
    for i, k in enumerate(body.keys):
        if isinstance(k, bool) or (ktype is ColumnType.INTEGER) != isinstance(k, int):
            raise RejectedInput([Problem(f"/keys/{i}", f"{table}.{key} is {ktype.value}; {k!r} is not one")])
        if isinstance(k, int) and not -(2**63) <= k < 2**63:
            raise RejectedInput([Problem(f"/keys/{i}", f"{k} is outside the 64-bit whole numbers a key can hold")])
    keys = list(dict.fromkeys(body.keys))  # one row per record, in the order first asked
    labels: list[str] = []
    values: dict[Any, list[Any]] = {k: [] for k in keys}
    for i, f in enumerate(body.fields):
        label, rows = _lookup_one(ctx, table, key, keys, f, f"/fields/{i}")
        labels.append(label)
        for k in keys:
            v = rows.get(k)
            values[k].append(float(v) if isinstance(v, Decimal) else v)
    return {"table": table, "key": key, "columns": labels, "rows": [{"key": k, "values": v} for k, v in values.items()]}


#: Names that say "when the record happened" (the first one present wins over column order).
_WHEN_NAMES = ("ts", "createdon", "modifiedon")


def latest_column(table: Table) -> str | None:
    """The column that orders ``table``'s records in time: one named ts/createdon/modifiedon, else the
    first datetime column, else the first date column; never a PII one (its order would reveal it)."""
    timed = {c: col for c, col in table.columns.items() if col.type in (ColumnType.DATETIME, ColumnType.DATE) and not col.pii}
    for name in _WHEN_NAMES:
        if name in timed:
            return name
    for kind in (ColumnType.DATETIME, ColumnType.DATE):
        for name, col in timed.items():
            if col.type is kind:
                return name
    return None


def latest_related_query(related: str, link: str, attribute: str, when: str | None, keys: list[Any]) -> exp.Select:
    """Per ``link`` value among ``keys``: ``attribute`` of the related row with the greatest ``when``
    (rows without one last; ties by the greater value), or the greatest ``attribute`` without ``when``.

    ``ROW_NUMBER() OVER (PARTITION BY link ORDER BY when DESC NULLS LAST, attribute DESC NULLS LAST)``
    in a subquery, rendered per dialect by sqlglot (DuckDB, PostgreSQL, Spark all have it).
    """
    src = exp.Table(this=_ident(related))
    inside = _keys_in(exp.column(link, quoted=True), keys)
    if when is None:
        return (
            exp.select(
                exp.alias_(exp.column(link, quoted=True), "k", quoted=True),
                exp.alias_(exp.Max(this=exp.column(attribute, quoted=True)), "v", quoted=True),
            )
            .from_(src)
            .where(inside)
            .group_by(exp.column(link, quoted=True))
        )
    order = exp.Order(
        expressions=[
            exp.Ordered(this=exp.column(c, quoted=True), desc=True, nulls_first=False) for c in dict.fromkeys((when, attribute))
        ]
    )
    rank = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(link, quoted=True)], order=order)
    ranked = (
        exp.select(
            exp.alias_(exp.column(link, quoted=True), "k", quoted=True),
            exp.alias_(exp.column(attribute, quoted=True), "v", quoted=True),
            exp.alias_(rank, "rn", quoted=True),
        )
        .from_(src)
        .where(inside)
    )
    return (
        exp.select(exp.column("k", quoted=True), exp.column("v", quoted=True))
        .from_(ranked.subquery("latest"))
        .where(exp.EQ(this=exp.column("rn", quoted=True), expression=exp.Literal.number(1)))
    )


def _keys_in(col: exp.Expr, keys: list[Any]) -> exp.Expr:
    lits = [exp.Literal.number(k) if isinstance(k, int) else exp.Literal.string(k) for k in keys]
    return exp.In(this=col, expressions=lits) if lits else exp.false()


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _lookup_one(ctx: Any, table: str, key: str, keys: list[Any], f: Field, at: str) -> tuple[str, dict[Any, Any]]:
    model = ctx.model
    chosen = [x for x in ("attribute", "measure", "related") if getattr(f, x) is not None]
    if f.measure is not None and (f.attribute is not None or f.related is not None or f.path):
        raise RejectedInput([Problem(at, "a measure is looked up on its own: give measure alone")])
    if not chosen:
        raise RejectedInput([Problem(at, "give an attribute (with an optional path), a measure, or related with an attribute")])
    if f.measure is not None:
        measures = model.measures_of(table)
        if f.measure not in measures:
            raise RejectedInput([Problem(at, f"table {table!r} has no measure {f.measure!r}{hint(f.measure, measures)}")])
        m = measures[f.measure]
        if m.where is not None:
            raise RejectedInput([Problem(at, f"measure {f.measure!r} has a filter; only unfiltered measures are looked up")])
        rel = model.one_to_many(table, m.related)
        assert rel is not None
        fn, attr = m.aggregate.fn, m.aggregate.attribute
        col = exp.column(attr, quoted=True)
        agg: exp.Expr = {
            "sum": exp.Sum(this=col),
            "avg": exp.Avg(this=col),
            "min": exp.Min(this=col),
            "max": exp.Max(this=col),
        }.get(fn) or exp.Count(this=exp.Distinct(expressions=[col]))
        q = (
            exp.select(exp.alias_(exp.column(rel.from_column, quoted=True), "k", quoted=True), exp.alias_(agg, "v", quoted=True))
            .from_(exp.Table(this=_ident(rel.from_table)))
            .where(_keys_in(exp.column(rel.from_column, quoted=True), keys))
            .group_by(exp.column(rel.from_column, quoted=True))
        )
        found = {r["k"]: r["v"] for r in ctx.ws.engine.run(q).to_pylist()}
        if fn in ("sum", "count_distinct"):  # over no records: 0 (contract 3.3)
            found = {k: found.get(k, 0) for k in keys}
        return model.measures[f.measure].label or f.measure, found
    if f.related is not None:
        if f.path:
            raise RejectedInput([Problem(at, "related lookups start from the table itself; leave path out")])
        rel = model.one_to_many(table, f.related)
        if rel is None:
            _, o2m = model.link_names(table)
            raise RejectedInput(
                [Problem(at, f"table {table!r} has no one-to-many relationship {f.related!r}{hint(f.related, o2m)}")]
            )
        cols = model.table(rel.from_table).columns
        if f.attribute is None:
            raise RejectedInput([Problem(at, f"give the attribute of the {rel.from_table} records to look up")])
        if f.attribute not in cols:
            raise RejectedInput([Problem(at, f"table {rel.from_table!r} has no column {f.attribute!r}{hint(f.attribute, cols)}")])
        if cols[f.attribute].pii:
            raise RejectedInput([Problem(at, f"{rel.from_table}.{f.attribute} holds PII and is not looked up")])
        when = latest_column(model.table(rel.from_table))
        q = latest_related_query(rel.from_table, rel.from_column, f.attribute, when, keys)
        found = {r["k"]: r["v"] for r in ctx.ws.engine.run(q).to_pylist()}
        target = model.table(rel.from_table).label or rel.from_table
        return f"{'last' if when else 'max'} {target} {cols[f.attribute].label or f.attribute}", found
    # An attribute along a many-to-one path: one LEFT JOIN per step, identifiers from the model only.
    q = exp.select(exp.alias_(exp.column(key, table="t0", quoted=True), "k", quoted=True)).from_(
        exp.Table(this=_ident(table), alias=exp.TableAlias(this=exp.to_identifier("t0")))
    )
    scope, alias = table, "t0"
    for n, step in enumerate(f.path, 1):
        rel = model.many_to_one(scope, step)
        if rel is None:
            m2o, _ = model.link_names(scope)
            raise RejectedInput(
                [Problem(f"{at}/path/{n - 1}", f"table {scope!r} has no many-to-one relationship {step!r}{hint(step, m2o)}")]
            )
        nxt = f"t{n}"
        q = q.join(
            exp.Table(this=_ident(rel.to_table), alias=exp.TableAlias(this=exp.to_identifier(nxt))),
            on=exp.EQ(
                this=exp.column(rel.from_column, table=alias, quoted=True),
                expression=exp.column(rel.to_column, table=nxt, quoted=True),
            ),
            join_type="left",
        )
        scope, alias = rel.to_table, nxt
    cols = model.table(scope).columns
    if f.attribute is None:
        raise RejectedInput([Problem(at, f"give the attribute of {scope!r} to look up")])
    if f.attribute not in cols:
        raise RejectedInput([Problem(at, f"table {scope!r} has no column {f.attribute!r}{hint(f.attribute, cols)}")])
    q = q.select(exp.alias_(exp.column(f.attribute, table=alias, quoted=True), "v", quoted=True)).where(
        _keys_in(exp.column(key, table="t0", quoted=True), keys)
    )
    found = {r["k"]: r["v"] for r in ctx.ws.engine.run(q).to_pylist()}
    if cols[f.attribute].pii:
        found = {k: (_MASK if v is not None else None) for k, v in found.items()}
    label = cols[f.attribute].label or f.attribute
    return (f"{' › '.join(f.path)} › {label}" if f.path else label), found
