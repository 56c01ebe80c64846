"""A saved segment's members: pages, CSV export, list changes, history, CSV import.

Members come from the stored membership (no re-evaluation). Rows with columns are read
from the audience table for the page's keys; PII columns are left out for restricted
users and masked for others unless ``show_pii``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from segmenta.errors import PermissionDenied
from segmenta.interfaces.api.auth import ChangeMembers, Ctx, Import, Read
from segmenta.interfaces.api.pii import key_is_pii, mask_keys
from segmenta.interfaces.api.routers.segments import resolve
from segmenta.interfaces.api.views import choose_columns, mask_rows, split_columns
from segmenta.services.csvimport import EMAIL_NAMES, import_csv
from segmenta.workspace import PII_MASK

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
    hidden = ctx.restricted and key_is_pii(ctx.service.model, seg.audience)
    if not columns:
        keys = ctx.ws.engine.run(keys_q).column(0).to_pylist()
        return {"total": total, "key": m.key, "keys": mask_keys(keys) if hidden else keys, "masked": [m.key] if hidden else []}
    chosen = choose_columns(ctx.model, seg.audience, columns)
    alias = "a"
    rows_q = (
        exp.select(*[exp.column(c, table=alias, quoted=True) for c in chosen])
        .from_(exp.Table(this=_ident(seg.audience), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        .where(exp.In(this=exp.column(m.key, table=alias, quoted=True), query=keys_q.subquery()))
        .order_by(exp.column(m.key, table=alias, quoted=True))
    )
    rows = ctx.ws.engine.run(rows_q).to_pylist()
    if hidden:
        for row in rows:
            row[m.key] = PII_MASK
    masked = ([m.key] if hidden else []) + mask_rows(
        ctx.model,
        seg.audience,
        [c for c in chosen if not (hidden and c == m.key)],
        rows,
        show_pii=show_pii and not ctx.restricted,
    )
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
    name = resolve(ctx, name)
    refuse_pii_keys(ctx, name, "adding members")
    return vars_of(ctx.segs.add(name, [str(k) for k in body.keys]))


@router.post("/segments/{name}/members/remove")
def remove_members(ctx: ChangeMembers, name: str, body: KeysBody) -> dict[str, Any]:
    """Remove records by key from a static list."""
    ctx.audit_detail = f"remove {len(body.keys)} keys"
    name = resolve(ctx, name)
    refuse_pii_keys(ctx, name, "removing members")
    return vars_of(ctx.segs.remove(name, [str(k) for k in body.keys]))


def refuse_pii_keys(ctx: Ctx, name: str, what: str) -> None:
    """Keys are PII in this audience: a restricted user may not send them (the answer would confirm a record)."""
    if not ctx.restricted:
        return
    audience = ctx.segs._detached(name).audience
    if key_is_pii(ctx.service.model, audience):
        key = ctx.service.model.table(audience).key
        raise PermissionDenied(f"{what} takes {audience} keys, and {audience}.{key} is PII, which your account may not use")


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
    refuse_pii_keys(ctx, name, "a record's history")
    seg = ctx.segs._detached(name)
    key = ctx.segs.parse_keys(seg.audience, [record])[0]
    return ctx.segs.record_history(name, key)


#: The upload cap when the app does not say (``service.max_upload_bytes``'s default).
UPLOAD_CAP = 256 * 1024 * 1024
CHUNK = 1 << 20


def _save_upload(file: UploadFile, target: Path, cap: int) -> None:
    """Copy the upload to ``target`` in chunks, refusing (413) as soon as it passes ``cap`` bytes."""
    written = 0
    with target.open("wb") as fh:
        while chunk := file.file.read(CHUNK):
            written += len(chunk)
            if written > cap:
                raise HTTPException(
                    413,
                    f"the uploaded file is larger than the limit of {cap:,} bytes; "
                    "send a smaller file, or raise service.max_upload_bytes in the workspace's segmenta.yaml",
                )
            fh.write(chunk)


def _refuse_pii_match(ctx: Ctx, name: str) -> None:
    """A restricted user may not match on a PII column: even counts would tell them whose address exists."""
    if not ctx.restricted:
        return
    seg = ctx.segs._detached(name)
    table = ctx.service.model.table(seg.audience)
    pii = [c for c in EMAIL_NAMES if c in table.columns and table.column(c).pii]
    if pii:
        raise PermissionDenied(
            f"import-csv matches on {seg.audience}.{pii[0]}, a PII column, which your account may not use "
            "(matching would reveal which addresses belong to records); ask a user without the PII restriction"
        )


@router.post("/segments/{name}/import-csv")
def import_csv_file(
    ctx: Import,
    request: Request,
    name: str,
    file: UploadFile,
    column: Annotated[str | None, Form(description="the file's email column, when its header is not a usual one")] = None,
) -> dict[str, Any]:
    """Match an uploaded CSV's emails to the list's audience and add the matches (``segment import-csv``).

    The delimiter (``,`` ``;`` tab) and the email column (email, E-mail Address, emailaddress1, ...)
    are detected; ``column`` names it otherwise. ``warnings`` says when one address matched several records.
    Refused (403) for PII-restricted users when the matched column is PII.
    """
    name = resolve(ctx, name)
    _refuse_pii_match(ctx, name)
    settings = getattr(request.app.state, "http_settings", None)
    cap = int(getattr(settings, "max_upload_bytes", UPLOAD_CAP))
    shown = Path(file.filename or "upload.csv").name or "upload.csv"
    import_id, not_found = ctx.service.new_import(ctx.user.username)
    with tempfile.TemporaryDirectory(prefix="segmenta-import-") as tmp:
        path = Path(tmp) / "upload.csv"
        _save_upload(file, path, cap)
        result = import_csv(ctx.segs, name, path, not_found=not_found, column=column, source_name=shown)
    answer: dict[str, Any] = result.to_json()
    ctx.audit_detail = ", ".join(f"{k}={v}" for k, v in answer.items())
    answer["warnings"] = result.warnings()
    answer["not_found_url"] = f"/api/imports/{import_id}/not-found.csv" if result.not_found > 0 else None
    return answer


@router.get("/imports/{import_id}/not-found.csv")
def not_found_rows(ctx: Read, import_id: str) -> FileResponse:
    """The rows of an import that matched no record (only for the user who ran it, or an admin)."""
    return FileResponse(ctx.service.import_file(import_id, ctx.user), media_type="text/csv", filename="not-found.csv")
