"""A saved segment's members: pages, CSV export, list changes, history, CSV import.

Members come from the stored membership (no re-evaluation). Rows with columns are read
from the audience table for the page's keys; PII columns are left out for restricted
users and masked for others unless ``show_pii``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from segmenta.errors import PermissionDenied, Problem, RejectedInput
from segmenta.interfaces.api.auth import ChangeMembers, Ctx, Import, Read
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import key_is_pii, mask_keys
from segmenta.interfaces.api.routers.segments import resolve
from segmenta.interfaces.api.runtime import Service
from segmenta.interfaces.api.views import choose_columns, csv_cell, key_literal, split_columns
from segmenta.services.csvimport import EMAIL_NAMES, change_keys, import_csv
from segmenta.workspace import PII_MASK, Workspace

router = APIRouter(prefix="/api", tags=["members"], responses=RESPONSES)


#: ``service.max_member_keys``'s default, for an app that does not say.
MAX_MEMBER_KEYS = 100_000


class KeysBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str | int] = Field(
        description=f"the records' keys; at most service.max_member_keys ({MAX_MEMBER_KEYS:,} unless set) per request"
    )


def _bounded(request: Request, body: KeysBody) -> None:
    """422 naming ``service.max_member_keys`` when a request sends more keys than it allows (nothing changes)."""
    most = int(getattr(getattr(request.app.state, "http_settings", None), "max_member_keys", MAX_MEMBER_KEYS))
    if len(body.keys) > most:
        raise RejectedInput(
            [
                Problem(
                    "/keys",
                    f"has {len(body.keys):,} keys; at most {most:,} per request (setting service.max_member_keys): "
                    "send them in several requests, or match a CSV with import-csv",
                )
            ]
        )


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


#: Rows per query of an export: the export holds one batch at a time, whatever the segment's size.
EXPORT_BATCH = 10_000
#: Highest offset a page may start at (a 64-bit engine's OFFSET; beyond it is a clear 422, not an overflow).
MAX_OFFSET = 2**62


@dataclass(frozen=True)
class Listing:
    """What a members page or export reads: the membership, the columns and what is masked."""

    key: str
    audience: str
    members: exp.Table | None  # None: the membership was never written
    total: int
    columns: list[str] | None  # None: keys only
    hidden: bool  # the key is PII and the caller restricted: every key shows as ***
    masked: list[str]  # columns shown as *** (the key first when hidden)

    def keys_query(self, *, after: Any = None, offset: int = 0, limit: int | None = None) -> exp.Select:
        """Member keys ascending, after key ``after`` (an export's next batch) or from ``offset`` (a page)."""
        assert self.members is not None
        key = exp.column(self.key, quoted=True)
        q = exp.select(key).from_(self.members.copy()).order_by(key.copy())
        if after is not None:
            q = q.where(exp.GT(this=key.copy(), expression=key_literal(after)))
        if offset:
            q = q.offset(offset)
        return q.limit(limit) if limit is not None else q

    def fetch(self, ws: Workspace, keys_q: exp.Select) -> tuple[list[Any], list[dict[str, Any]] | None]:
        """(raw keys, rows masked as they may be shown or None for keys only) of the members ``keys_q`` selects.

        The keys come from the membership, so a page or an export batch is never short: a member
        whose record has gone from the audience table since (a static list keeps its keys) is a
        row with its key and empty cells, and the export's cursor moves on from the membership.
        """
        keys = ws.engine.run(keys_q).column(0).to_pylist()
        if self.columns is None or not keys:
            return keys, None if self.columns is None else []
        alias = "a"
        rows_q = exp.select(*[exp.column(c, table=alias, quoted=True) for c in self.columns]).from_(
            exp.Table(this=_ident(self.audience), alias=exp.TableAlias(this=exp.to_identifier(alias)))
        )
        assert self.members is not None
        key = exp.column(self.key, quoted=True)
        low, high = key_literal(keys[0]), key_literal(keys[-1])  # keys ascend: the membership between is the batch
        batch = exp.select(key).from_(self.members.copy()).where(exp.Between(this=key.copy(), low=low, high=high))
        rows_q = rows_q.where(exp.In(this=exp.column(self.key, table=alias, quoted=True), query=batch.subquery()))
        by_key = {r[self.key]: r for r in ws.engine.run(rows_q).to_pylist()}
        rows = [by_key.get(k) or {**dict.fromkeys(self.columns), self.key: k} for k in keys]
        for row in rows:
            for c in self.masked:
                if row.get(c) is not None:
                    row[c] = PII_MASK
        return keys, rows

    def shown_keys(self, keys: list[Any]) -> list[Any]:
        return mask_keys(keys) if self.hidden else keys


def listing(ctx: Ctx, name: str, columns: list[str] | None, show_pii: bool) -> Listing:
    """Checks everything (segment, columns, PII) before anything is read or streamed."""
    seg = ctx.segs._detached(name)  # the lifecycle's own lookup (NotFound with a hint)
    m = ctx.segs.membership(seg)
    exists = m.exists()
    hidden = ctx.restricted and key_is_pii(ctx.service.model, seg.audience)
    chosen = choose_columns(ctx.model, seg.audience, columns) if columns else None
    masked = [m.key] if hidden else []
    if chosen is not None and not (show_pii and not ctx.restricted):
        table = ctx.service.model.table(seg.audience)
        masked += [c for c in chosen if c != m.key and table.column(c).pii]
    return Listing(
        key=m.key,
        audience=seg.audience,
        members=m.members if exists else None,
        total=m.size() if exists else 0,
        columns=chosen,
        hidden=hidden,
        masked=masked,
    )


def _page(ctx: Ctx, name: str, offset: int, limit: int, columns: list[str] | None, show_pii: bool) -> dict[str, Any]:
    found = listing(ctx, name, columns, show_pii)
    answer: dict[str, Any] = {"total": found.total, "key": found.key, "keys": [], "masked": found.masked}
    if found.columns is not None:
        answer.update(columns=found.columns, rows=[])
    if found.members is None:
        return answer
    keys, rows = found.fetch(ctx.ws, found.keys_query(offset=offset, limit=limit))
    answer["keys"] = found.shown_keys(keys)
    if rows is not None:
        answer["rows"] = rows
    return answer


@router.get("/segments/{name}/members")
def members(
    ctx: Read,
    name: str,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=0, le=100_000),
    columns: str | None = None,
    show_pii: bool = False,
) -> dict[str, Any]:
    """A page of member keys ascending; with ``columns`` (comma-separated) also their rows."""
    return _page(ctx, resolve(ctx, name), offset, limit, split_columns(columns), show_pii)


def _csv_batches(service: Service, found: Listing) -> Iterator[str]:
    """The export, one batch of rows at a time, on an engine of its own (the request's is closed by then)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found.columns or [found.key])
    yield out.getvalue()
    if found.members is None:
        return
    with service.workspace() as ws:
        after: Any = None
        while True:
            keys, rows = found.fetch(ws, found.keys_query(after=after, limit=EXPORT_BATCH))
            if not keys:
                return
            after = keys[-1]
            out.seek(0)
            out.truncate()
            if rows is None:
                writer.writerows([csv_cell(k)] for k in found.shown_keys(keys))
            else:
                writer.writerows([csv_cell(r[c]) for c in found.columns or ()] for r in rows)
            yield out.getvalue()


@router.get("/segments/{name}/members.csv", responses={200: {"content": {"text/csv": {}}}})
def export(ctx: Read, name: str, columns: str | None = None, show_pii: bool = False) -> StreamingResponse:
    """Every member as CSV (``segment members --out``): the key column, plus ``columns`` if asked.

    Streamed in batches; text cells that a spreadsheet would run as a formula are prefixed with '.
    """
    name = resolve(ctx, name)
    found = listing(ctx, name, split_columns(columns), show_pii)
    return StreamingResponse(
        _csv_batches(ctx.service, found), media_type="text/csv", headers={"Content-Disposition": attachment(name)}
    )


@router.post("/segments/{name}/members/add")
def add_members(ctx: ChangeMembers, request: Request, name: str, body: KeysBody) -> dict[str, Any]:
    """Add records by key to a static list."""
    ctx.audit_detail = f"add {len(body.keys)} keys"
    _bounded(request, body)
    name = resolve(ctx, name)
    refuse_pii_keys(ctx, name, "adding members")
    return vars_of(change_keys(ctx.segs, name, [str(k) for k in body.keys], "add"))


@router.post("/segments/{name}/members/remove")
def remove_members(ctx: ChangeMembers, request: Request, name: str, body: KeysBody) -> dict[str, Any]:
    """Remove records by key from a static list."""
    ctx.audit_detail = f"remove {len(body.keys)} keys"
    _bounded(request, body)
    name = resolve(ctx, name)
    refuse_pii_keys(ctx, name, "removing members")
    return vars_of(change_keys(ctx.segs, name, [str(k) for k in body.keys], "remove"))


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
