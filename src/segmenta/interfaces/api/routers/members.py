"""A saved segment's members: pages, CSV export, list changes, history, CSV import.

Members come from the stored membership (no re-evaluation). Rows with columns are read
from the audience table for the page's keys; PII columns are left out for restricted
users and masked for others unless ``show_pii``.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from segmenta.interfaces.api.auth import ChangeMembers, Ctx, Import, Read
from segmenta.interfaces.api.routers.segments import resolve
from segmenta.interfaces.api.views import choose_columns, mask_rows, split_columns
from segmenta.services.csvimport import import_csv

router = APIRouter(prefix="/api", tags=["members"])


class KeysBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str | int]


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _page(ctx: Ctx, name: str, offset: int, limit: int | None, columns: list[str] | None, show_pii: bool) -> dict[str, Any]:
    seg = ctx.segs._detached(name)  # the lifecycle's own lookup (NotFound with a hint)
    m = ctx.segs.membership(seg)
    total = m.size() if m.exists() else 0
    if not m.exists():
        return {"total": 0, "key": m.key, "keys": [], "columns": columns or [m.key], "rows": [], "masked": []}
    keys_q = (
        exp.select(exp.column(m.key, quoted=True)).from_(m.members.copy()).order_by(exp.column(m.key, quoted=True)).offset(offset)
    )
    if limit is not None:
        keys_q = keys_q.limit(limit)
    if not columns:
        keys = ctx.ws.engine.run(keys_q).column(0).to_pylist()
        return {"total": total, "key": m.key, "keys": keys}
    chosen = choose_columns(ctx.model, seg.audience, columns)
    alias = "a"
    rows_q = (
        exp.select(*[exp.column(c, table=alias, quoted=True) for c in chosen])
        .from_(exp.Table(this=_ident(seg.audience), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        .where(exp.In(this=exp.column(m.key, table=alias, quoted=True), query=keys_q.subquery()))
        .order_by(exp.column(m.key, table=alias, quoted=True))
    )
    rows = ctx.ws.engine.run(rows_q).to_pylist()
    masked = mask_rows(ctx.model, seg.audience, chosen, rows, show_pii=show_pii and not ctx.restricted)
    return {"total": total, "key": m.key, "keys": [r[m.key] for r in rows], "columns": chosen, "rows": rows, "masked": masked}


@router.get("/segments/{name}/members")
def members(
    ctx: Read,
    name: str,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=0, le=100_000),
    columns: str | None = None,
    show_pii: bool = False,
) -> dict[str, Any]:
    """A page of member keys ascending; with ``columns`` (comma-separated) also their rows."""
    return _page(ctx, resolve(ctx, name), offset, limit, split_columns(columns), show_pii)


@router.get("/segments/{name}/members.csv")
def export(ctx: Read, name: str, columns: str | None = None, show_pii: bool = False) -> Response:
    """Every member as CSV (``segment members --out``): the key column, plus ``columns`` if asked."""
    name = resolve(ctx, name)
    page = _page(ctx, name, 0, None, split_columns(columns), show_pii)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if "rows" in page and split_columns(columns):
        writer.writerow(page["columns"])
        writer.writerows([["" if r[c] is None else r[c] for c in page["columns"]] for r in page["rows"]])
    else:
        writer.writerow([page["key"]])
        writer.writerows([k] for k in page["keys"])
    return Response(out.getvalue(), media_type="text/csv", headers={"Content-Disposition": attachment(name)})


@router.post("/segments/{name}/members/add")
def add_members(ctx: ChangeMembers, name: str, body: KeysBody) -> dict[str, Any]:
    """Add records by key to a static list."""
    ctx.audit_detail = f"add {len(body.keys)} keys"
    return vars_of(ctx.segs.add(resolve(ctx, name), [str(k) for k in body.keys]))


@router.post("/segments/{name}/members/remove")
def remove_members(ctx: ChangeMembers, name: str, body: KeysBody) -> dict[str, Any]:
    """Remove records by key from a static list."""
    ctx.audit_detail = f"remove {len(body.keys)} keys"
    return vars_of(ctx.segs.remove(resolve(ctx, name), [str(k) for k in body.keys]))


def attachment(stem: str, suffix: str = ".csv") -> str:
    """A Content-Disposition for ``stem + suffix``: an ASCII fallback, and the real name RFC 5987-encoded (any script)."""
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in stem).strip("_") or "segment"
    return f"attachment; filename=\"{fallback}{suffix}\"; filename*=UTF-8''{quote(stem + suffix, safe='')}"


def vars_of(result: Any) -> dict[str, Any]:
    return asdict(result)


@router.get("/segments/{name}/history")
def history(ctx: Read, name: str, record: str | None = None) -> list[dict[str, Any]]:
    """Refreshes (time, trigger, version, size, entered, exited), or one record's entries and exits."""
    name = resolve(ctx, name)
    if record is None:
        return ctx.segs.history(name)
    seg = ctx.segs._detached(name)
    key = ctx.segs.parse_keys(seg.audience, [record])[0]
    return ctx.segs.record_history(name, key)


@router.post("/segments/{name}/import-csv")
def import_csv_file(ctx: Import, name: str, file: UploadFile) -> dict[str, Any]:
    """Match an uploaded CSV's emails to the list's audience and add the matches (``segment import-csv``)."""
    name = resolve(ctx, name)
    import_id, not_found = ctx.service.new_import(ctx.user.username)
    with tempfile.TemporaryDirectory(prefix="segmenta-import-") as tmp:
        path = Path(tmp) / "upload.csv"
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        result = import_csv(ctx.segs, name, path, not_found=not_found)
    answer: dict[str, Any] = result.to_json()
    ctx.audit_detail = ", ".join(f"{k}={v}" for k, v in answer.items())
    show = result.not_found > 0 and not ctx.restricted
    answer["not_found_url"] = f"/api/imports/{import_id}/not-found.csv" if show else None
    return answer


@router.get("/imports/{import_id}/not-found.csv")
def not_found_rows(ctx: Read, import_id: str) -> FileResponse:
    """The rows of an import that matched no record (only for the user who ran it, or an admin)."""
    return FileResponse(ctx.service.import_file(import_id, ctx.user), media_type="text/csv", filename="not-found.csv")
