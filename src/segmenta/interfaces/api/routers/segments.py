"""Saved segments: create, edit, versions, status changes, rename, delete, restore, settings.

All lifecycle rules live in :class:`segmenta.services.segments.Segments`; this module
only checks the definition against the user's visible model (PII), shapes answers, and
turns a taken name or a status change the segment's state does not allow into 409
(:func:`refuse_transition`, an adapter until the lifecycle raises ``Conflict`` itself).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

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
from segmenta.interfaces.api.pii import redact_definition
from segmenta.model.validate import parse_definition

router = APIRouter(prefix="/api/segments", tags=["segments"])


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
    status_reason: str


class RenameBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_name: str


def segment_json(seg: dict[str, Any]) -> dict[str, Any]:
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
    if ctx.restricted:
        parse_definition(raw, ctx.model)


@router.get("")
def list_segments(ctx: Read, deleted: bool = False) -> list[dict[str, Any]]:
    """Every segment by name (deleted ones only with ``deleted=true``)."""
    return [segment_json(s) for s in all_segments(ctx, deleted=deleted)]


@router.post("", status_code=201)
def create_segment(ctx: Create, body: NewSegment) -> dict[str, Any]:
    """A Draft from a definition, or (``list``) an empty static list of ``audience`` named ``name``."""
    if body.list:
        if body.definition is not None or body.snapshot:
            raise RejectedInput([Problem("/list", "a static list has no definition and is not a snapshot; leave those out")])
        ctx.audit_object = body.name or ""
        refuse_taken(ctx, body.name or "")
        return segment_json(ctx.segs.create_list(audience=body.audience or "", name=body.name or ""))
    if body.definition is None:
        raise RejectedInput([Problem("/definition", 'give a definition, or "list": true with an audience and a name')])
    _check(ctx, body.definition)
    name = (body.name or str(body.definition.get("name") or "")).strip()
    ctx.audit_object = name
    if name:
        refuse_taken(ctx, name)
    return segment_json(ctx.segs.create(body.definition, name=body.name, snapshot=body.snapshot))


@router.get("/{name}")
def get_segment(ctx: Read, name: str) -> dict[str, Any]:
    """One segment with its current ``definition`` (PII values shown as *** to restricted users)."""
    seg = ctx.segs.show(name)
    saved: Any = ctx.segs.versions(name)
    definition = saved[-1]["definition"] if saved else None
    if ctx.restricted:
        definition = redact_definition(definition, ctx.service.model)
    return {**segment_json(seg), "definition": definition}


@router.put("/{name}")
def edit_segment(ctx: Edit, name: str, body: EditBody) -> dict[str, Any]:
    """Save a new version (a live dynamic segment is re-evaluated with it)."""
    _check(ctx, body.definition)
    refuse_transition(ctx.segs.show(name), "edit")
    return segment_json(ctx.segs.edit(name, body.definition))


@router.get("/{name}/versions")
def versions(ctx: Read, name: str) -> list[dict[str, Any]]:
    rows: Any = ctx.segs.versions(name)
    if ctx.restricted:
        rows = [{**v, "definition": redact_definition(v["definition"], ctx.service.model)} for v in rows]
    return rows


@router.get("/{name}/versions/{version}")
def version(ctx: Read, name: str, version: int) -> dict[str, Any]:
    for v in versions(ctx, name):
        if v["version"] == version:
            return v
    raise NotFound([Problem(f"{name}/versions/{version}", "no such version")])


def _result(ctx: Ctx, name: str, result: Any) -> dict[str, Any]:
    return {**segment_json(ctx.segs.show(result.name if hasattr(result, "name") else name)), "refresh": asdict(result)}


@router.post("/{name}/publish")
def publish(ctx: Publish, name: str) -> dict[str, Any]:
    """Draft -> live, evaluating the current version; the answer carries the refresh counts."""
    refuse_transition(ctx.segs.show(name), "publish")
    return _result(ctx, name, ctx.segs.publish(name))


@router.post("/{name}/refresh")
def refresh(ctx: Refresh, name: str) -> dict[str, Any]:
    refuse_transition(ctx.segs.show(name), "refresh")
    return _result(ctx, name, ctx.segs.refresh(name))


@router.post("/{name}/stop")
def stop(ctx: Stop, name: str) -> dict[str, Any]:
    refuse_transition(ctx.segs.show(name), "stop")
    return segment_json(ctx.segs.stop(name))


@router.post("/{name}/activate")
def activate(ctx: Activate, name: str, body: ActivateBody) -> dict[str, Any]:
    """``status_reason`` draft (back to draft) or ready (go live; an expired segment needs draft first)."""
    ctx.audit_detail = body.status_reason
    if body.status_reason == "ready":
        refuse_transition(ctx.segs.show(name), "ready")
    return segment_json(ctx.segs.activate(name, body.status_reason))


@router.post("/{name}/rename")
def rename(ctx: Rename, name: str, body: RenameBody) -> dict[str, Any]:
    ctx.audit_detail = f"-> {body.new_name}"
    ctx.segs.show(name)
    refuse_taken(ctx, body.new_name)
    return segment_json(ctx.segs.rename(name, body.new_name))


@router.delete("/{name}")
def delete(ctx: Delete, name: str) -> dict[str, Any]:
    """Soft delete (restore brings it back)."""
    ctx.segs.delete(name)
    return {"deleted": name}


@router.post("/{name}/restore")
def restore(ctx: Restore, name: str) -> dict[str, Any]:
    return segment_json(ctx.segs.restore(name))


@router.patch("/{name}/settings")
def configure(ctx: Configure, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The segment's own refresh/expiry settings (null removes an override)."""
    ctx.audit_detail = ", ".join(sorted(body))
    return segment_json(ctx.segs.configure(name, body))
