"""Record changes over HTTP: batches of rows upserted into or deleted from a model table (contract 5.2's REST twin).

``POST /api/tables/{table}/records`` (upsert) and ``POST /api/tables/{table}/records/delete``
take the rows as a JSON array of objects (``application/json``), NDJSON
(``application/x-ndjson``) or CSV (``text/csv``), and apply them exactly as ``segmenta
records upsert|delete`` applies that file: checked whole (a bad row is a 422 naming the row
and the column; nothing is applied), one transaction, ``_change_id`` skipping re-sent rows,
the live segments that read a changed column refreshed. The answer is the CLI's ``--json``.

Who: record changes alter the source data the segments read, like replacing a table
(``tables.load``): admins and operators. Builders (marketers) and viewers read.

Personal data: a PII-restricted user's model has no PII columns, so a row naming one is
refused exactly as a column that does not exist (422, with hints from their own model only),
and a table whose key is PII is refused whole (403): the inserted/updated counts would tell
them which PII keys exist. Whoever sends them, PII values are never echoed back: a problem on
a PII column says where, not what. Bodies are capped by ``service.max_body_bytes`` (413).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from segmenta.errors import DataError, NotFound, PermissionDenied, Problem, RejectedInput
from segmenta.interfaces.api.auth import LoadTable
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import key_is_pii
from segmenta.interfaces.api.routers.model import forget_row_counts
from segmenta.model.schema import hint

router = APIRouter(prefix="/api", tags=["records"], responses=RESPONSES)

CHANGE_ID = "_change_id"
LABEL = "body"
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
CSV_TYPES = ("text/csv",)

_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "column: value; an update changes only the columns given; `_change_id` makes a re-send a no-op",
    "additionalProperties": True,
}
BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": _ROW_SCHEMA}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "one JSON object per line"}},
            "text/csv": {"schema": {"type": "string", "description": "a header row, then one record per row"}},
        },
    }
}


class Body:
    """The request's raw body and what kind of text it is (json, ndjson or csv)."""

    def __init__(self, text: str, kind: str) -> None:
        self.text = text
        self.kind = kind


async def read_body(request: Request) -> Body:
    """The body as text, with its kind from Content-Type (JSON unless it says NDJSON or CSV)."""
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    kind = "ndjson" if media in NDJSON_TYPES else "csv" if media in CSV_TYPES else "json"
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RejectedInput([Problem(LABEL, f"not UTF-8 text ({exc.reason} at byte {exc.start}); send UTF-8")]) from None
    return Body(text, kind)


RawBody = Annotated[Body, Depends(read_body)]


def _rows(body: Body) -> list[Any] | None:
    """The rows of a JSON or NDJSON body (None for CSV); a body that is not one is a 422 naming where."""
    if body.kind == "csv":
        return None
    if body.kind == "json":
        try:
            value = json.loads(body.text) if body.text.strip() else None
        except json.JSONDecodeError as exc:
            raise RejectedInput([Problem(f"{LABEL}: line {exc.lineno}", f"not valid JSON: {exc.msg}")]) from None
        if not isinstance(value, list):
            raise RejectedInput(
                [
                    Problem(
                        LABEL,
                        "send a JSON array of records (objects of column: value), "
                        "or NDJSON with Content-Type: application/x-ndjson",
                    )
                ]
            )
        return value
    rows = []
    for lineno, line in enumerate(body.text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RejectedInput([Problem(f"{LABEL}: line {lineno}", f"not valid JSON: {exc.msg}")]) from None
    return rows


def _columns(body: Body, rows: list[Any] | None) -> list[str]:
    """Every column the body names, in first-seen order."""
    if rows is None:
        header = next(csv.reader(io.StringIO(body.text)), [])
        return [h.strip() for h in header]
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(str(k) for k in row))
    return list(seen)


def _check_restricted(ctx: Any, table: str, body: Body, rows: list[Any] | None) -> None:
    """A PII-restricted user: no PII key table at all, and a PII column is as unknown as a missing one."""
    full = ctx.service.model.table(table)
    if key_is_pii(ctx.service.model, table):
        raise PermissionDenied(
            f"record changes of {table} name records by {table}.{full.key}, which is PII and your account may not use"
        )
    visible = list(ctx.model.table(table).columns)
    for column in _columns(body, rows):
        if column != CHANGE_ID and column not in visible:
            raise DataError(
                [
                    Problem(
                        LABEL,
                        f"column {column!r} is not an attribute of {table!r}{hint(column, visible)}; columns: {', '.join(visible)}",
                    )
                ]
            )


def _masked(ctx: Any, table: str, problem: Problem) -> Problem:
    """A problem on a PII column says which row and column, never the value (whoever asked)."""
    for name, col in ctx.service.model.table(table).columns.items():
        if col.pii and f"column {name!r}" in problem.message:
            return Problem(problem.where, f"column {name!r}: the value does not fit the column (not shown: the column holds PII)")
    return problem


def _change(ctx: Any, table: str, body: Body, op: str) -> dict[str, Any]:
    from segmenta.realtime.rows import apply_rows, apply_text

    if table not in ctx.model.tables:
        raise NotFound([Problem(table, f"unknown table{hint(table, ctx.model.tables)}; tables: {', '.join(ctx.model.tables)}")])
    rows = _rows(body)
    if ctx.restricted:
        _check_restricted(ctx, table, body, rows)
    try:
        if rows is None:
            result = apply_text(ctx.segs, table, op, body.text, "csv", label=LABEL)
        elif body.kind == "json":
            result = apply_rows(ctx.segs, table, op, rows, label=LABEL)
        else:
            result = apply_text(ctx.segs, table, op, body.text, "ndjson", label=LABEL)
    except DataError as exc:
        raise DataError([_masked(ctx, table, p) for p in exc.problems]) from None
    finally:
        forget_row_counts(ctx.service)
    answer = result.to_dict()
    ctx.audit_detail = ", ".join(f"{k}={answer[k]}" for k in ("inserted", "updated", "deleted", "skipped", "unknown"))
    return answer


@router.post("/tables/{table}/records", openapi_extra=BODY_DOC)
def upsert_records(ctx: LoadTable, table: str, body: RawBody) -> dict[str, Any]:
    """Insert records with new keys, update the others (only the columns a row gives), as ``segmenta records upsert``.

    The rows: a JSON array, NDJSON (``Content-Type: application/x-ndjson``) or CSV (``text/csv``).
    A bad row rejects the whole body (422 naming the row and column) and nothing is applied.
    """
    return _change(ctx, table, body, "upsert")


@router.post("/tables/{table}/records/delete", openapi_extra=BODY_DOC)
def delete_records(ctx: LoadTable, table: str, body: RawBody) -> dict[str, Any]:
    """Delete the records whose keys the rows give (unknown keys are counted), as ``segmenta records delete``."""
    return _change(ctx, table, body, "delete")
