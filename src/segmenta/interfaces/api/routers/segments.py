"""Saved segments: create, edit, versions, status changes, rename, delete, restore, settings.

All lifecycle rules live in :class:`segmenta.services.segments.Segments`; this module
only checks the definition against the user's visible model (PII), shapes answers, and
turns a taken name or a status change the segment's state does not allow into 409
(:func:`refuse_transition`, an adapter until the lifecycle raises ``Conflict`` itself).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.interfaces.api.auth import (
    Activate,
    Configure,
    Create,
    Ctx,
    Delete,
    Edit,
    Publish,
    Read,
    Refresh,
    Rename,
    Restore,
    Stop,
)
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import redact_definition
from segmenta.model.validate import parse_definition
from segmenta.services.segments import NAME_MAX, clean_name
from segmenta.services.stores import segment_ids

router = APIRouter(prefix="/api/segments", tags=["segments"], responses=RESPONSES)


class NewSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any] | None = None
    name: str | None = None
    snapshot: bool = False
    list: bool = False
    audience: str | None = None


class EditBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]


class ActivateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status_reason: Literal["draft", "ready"]


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_name: str


#: Longest segment name (the store's column is String(200)); longer names are refused, not cut.
NAME_LIMIT = NAME_MAX


def resolve(ctx: Ctx, ref: str, *, deleted: bool = False) -> str:
    """The name of the segment ``ref`` addresses (:meth:`Segments.resolve`): the id when all digits and such a
    segment exists (a deleted one only when ``deleted``), else the name.

    Names may contain '/', which no path segment can carry; such segments are reached by id.
    The audit entry names the segment, not the id it was reached by.
    """
    if len(ref) > NAME_LIMIT or any(ord(c) < 32 or ord(c) == 127 for c in ref):
        # no segment can have this name (a store such as PostgreSQL would refuse even to look it up)
        ctx.audit_object = ref[:NAME_LIMIT]
        raise NotFound(
            [
                Problem(
                    ref[:NAME_LIMIT],
                    f"no saved segment has this name (names have at most {NAME_LIMIT} characters, none a control character)",
                )
            ]
        )
    name = ctx.segs.resolve(ref, deleted=deleted)
    ctx.audit_object = name
    return name


def check_name(name: str, where: str) -> str:
    """``name`` trimmed and checked by the lifecycle's own rule (:func:`clean_name`), the problem at ``where``.

    Control characters are named by code point first (a JSON client cannot see a NUL it sent).
    """
    bad = sorted({f"U+{ord(c):04X}" for c in name.strip() if ord(c) < 32 or ord(c) == 127} if isinstance(name, str) else ())
    if bad:
        raise RejectedInput([Problem(where, f"a segment name cannot hold control characters ({', '.join(bad)}); remove them")])
    return clean_name(name, where=where)


def _ids(ctx: Ctx, names: list[str]) -> dict[str, int]:
    return segment_ids(ctx.service.store, names)


def segment_json(ctx: Ctx, seg: dict[str, Any], *, ids: dict[str, int] | None = None) -> dict[str, Any]:
    """One segment as the API answers it: with its ``id`` (the web UI addresses segments by id)."""
    if "id" not in seg:
        seg = {"id": (ids if ids is not None else _ids(ctx, [seg["name"]])).get(seg["name"]), **seg}
    return {**seg, "last_refreshed_at": seg.get("last_refresh_at")}


def all_segments(ctx: Ctx, *, deleted: bool = False) -> list[dict[str, Any]]:
    """Every segment by name (``list_segments``; ``list`` before the lifecycle renamed it)."""
    listing = getattr(ctx.segs, "list_segments", None) or getattr(ctx.segs, "list")  # noqa: B009
    result: list[dict[str, Any]] = listing(deleted=deleted)
    return result


def refuse_taken(ctx: Ctx, name: str) -> None:
    """409 when a segment (deleted ones included) already has ``name``."""
    for seg in all_segments(ctx, deleted=True):
        if seg["name"] == name.strip():
            extra = " (a deleted segment; restore it or choose another name)" if seg["deleted"] else ""
            raise Conflict([Problem(name, f"a segment with this name already exists{extra}")])


def refuse_transition(seg: dict[str, Any], action: str) -> None:
    """409 for a status change the segment's current status does not allow."""
    name, status = seg["name"], seg["status"]
    if status == "expired" and action in ("publish", "edit", "ready"):
        raise Conflict([Problem(name, "is expired; set it to draft first (activate with status_reason draft), then ready")])
    if action == "stop" and status not in ("live", "going_live", "error"):
        raise Conflict([Problem(name, f"is {status}; only a live segment can be stopped")])
    if action == "refresh" and seg["kind"] == "dynamic" and status != "live":
        raise Conflict([Problem(name, f"is {status}; only live segments are refreshed (publish it first)")])


def _check(ctx: Ctx, raw: Any) -> None:
    """The definition against the model the user may see and the service's size limits (422 naming either)."""
    parse_definition(raw, ctx.model, limits=ctx.service.limits)


@router.get("")
def list_segments(ctx: Read, deleted: bool = False) -> list[dict[str, Any]]:
    """Every segment by name (deleted ones only with ``deleted=true``), each with its ``id``."""
    found = all_segments(ctx, deleted=deleted)
    ids = _ids(ctx, [s["name"] for s in found])
    return [segment_json(ctx, s, ids=ids) for s in found]


@router.post("", status_code=201)
def create_segment(ctx: Create, body: NewSegment) -> dict[str, Any]:
    """A Draft from a definition, or (``list``) an empty static list of ``audience`` named ``name``."""
    if body.list:
        if body.definition is not None or body.snapshot:
            raise RejectedInput([Problem("/list", "a static list has no definition and is not a snapshot; leave those out")])
        ctx.audit_object = (body.name or "").strip()
        name = check_name(body.name or "", "/name")
        refuse_taken(ctx, name)
        return segment_json(ctx, ctx.segs.create_list(audience=body.audience or "", name=name))
    if body.definition is None:
        raise RejectedInput([Problem("/definition", 'give a definition, or "list": true with an audience and a name')])
    given = body.name if body.name is not None else body.definition.get("name")
    ctx.audit_object = str(given or "").strip()  # the audit names the segment even when it is refused
    name = check_name(str(given), "/name" if body.name is not None else "/definition/name") if str(given or "").strip() else ""
    _check(ctx, body.definition)
    if name:
        refuse_taken(ctx, name)
    return segment_json(ctx, ctx.segs.create(body.definition, name=name or None, snapshot=body.snapshot))


@router.get("/{name}")
def get_segment(ctx: Read, name: str) -> dict[str, Any]:
    """One segment (by id or name) with its current ``definition`` (PII values shown as *** to restricted users)."""
    name = resolve(ctx, name)
    seg = ctx.segs.show(name)
    saved: Any = ctx.segs.versions(name)
    definition = saved[-1]["definition"] if saved else None
    if ctx.restricted:
        definition = redact_definition(definition, ctx.service.model)
    return {**segment_json(ctx, seg), "definition": definition}


@router.put("/{name}")
def edit_segment(ctx: Edit, name: str, body: EditBody) -> dict[str, Any]:
    """Save a new version (a live dynamic segment is re-evaluated with it)."""
    name = resolve(ctx, name)
    _check(ctx, body.definition)
    refuse_transition(ctx.segs.show(name), "edit")
    return segment_json(ctx, ctx.segs.edit(name, body.definition))


@router.get("/{name}/versions")
def versions(ctx: Read, name: str) -> list[dict[str, Any]]:
    name = resolve(ctx, name)
    rows: Any = ctx.segs.versions(name)
    if ctx.restricted:
        rows = [{**v, "definition": redact_definition(v["definition"], ctx.service.model)} for v in rows]
    return rows


@router.get("/{name}/versions/{version}")
def version(ctx: Read, name: str, version: int) -> dict[str, Any]:
    for v in versions(ctx, name):
        if v["version"] == version:
            return v
    raise NotFound([Problem(f"{ctx.audit_object}/versions/{version}", "no such version")])


def _result(ctx: Ctx, name: str, result: Any) -> dict[str, Any]:
    shown = ctx.segs.show(result.name if hasattr(result, "name") else name)
    return {**segment_json(ctx, shown), "refresh": asdict(result)}


@router.post("/{name}/publish")
def publish(ctx: Publish, name: str) -> dict[str, Any]:
    """Draft -> live, evaluating the current version; the answer carries the refresh counts."""
    name = resolve(ctx, name)
    refuse_transition(ctx.segs.show(name), "publish")
    return _result(ctx, name, ctx.segs.publish(name))


@router.post("/{name}/refresh")
def refresh(ctx: Refresh, name: str) -> dict[str, Any]:
    name = resolve(ctx, name)
    refuse_transition(ctx.segs.show(name), "refresh")
    return _result(ctx, name, ctx.segs.refresh(name))


@router.post("/{name}/stop")
def stop(ctx: Stop, name: str) -> dict[str, Any]:
    name = resolve(ctx, name)
    refuse_transition(ctx.segs.show(name), "stop")
    return segment_json(ctx, ctx.segs.stop(name))


@router.post("/{name}/activate")
def activate(ctx: Activate, name: str, body: ActivateBody) -> dict[str, Any]:
    """``status_reason`` draft (back to draft) or ready (go live; an expired segment needs draft first)."""
    name = resolve(ctx, name)
    ctx.audit_detail = body.status_reason
    if body.status_reason == "ready":
        refuse_transition(ctx.segs.show(name), "ready")
    return segment_json(ctx, ctx.segs.activate(name, body.status_reason))


@router.post("/{name}/rename")
def rename(ctx: Rename, name: str, body: RenameBody) -> dict[str, Any]:
    name = resolve(ctx, name)
    new_name = check_name(body.new_name, "/new_name")
    ctx.audit_detail = f"-> {new_name}"
    ctx.segs.show(name)
    refuse_taken(ctx, new_name)
    return segment_json(ctx, ctx.segs.rename(name, new_name))


@router.delete("/{name}")
def delete(ctx: Delete, name: str) -> dict[str, Any]:
    """Soft delete (restore brings it back)."""
    name = resolve(ctx, name)
    seg = segment_json(ctx, ctx.segs.show(name))
    ctx.segs.delete(name)
    return {"deleted": name, "id": seg["id"]}


@router.post("/{name}/restore")
def restore(ctx: Restore, name: str) -> dict[str, Any]:
    name = resolve(ctx, name, deleted=True)
    return segment_json(ctx, ctx.segs.restore(name))


@router.patch("/{name}/settings")
def configure(ctx: Configure, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The segment's own refresh/expiry settings (null removes an override)."""
    name = resolve(ctx, name)
    ctx.audit_detail = ", ".join(sorted(body))
    return segment_json(ctx, ctx.segs.configure(name, body))
