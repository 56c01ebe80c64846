"""Destinations over REST (admin only): manage them, test them, send segments, read the send history.

Secrets go in (``secrets`` of a create or a change) and never come out: every answer shows only
which secrets are set. A PII-restricted admin cannot send a column marked ``pii`` (422), and no
destination receives one unless its ``pii`` setting allows it. Reads use the ``users.read``
permission and changes ``users.admin`` (both admin only), so the audit log names them so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from segmenta.interfaces.api.auth import SIGNED_IN, Ctx, UsersAdmin, UsersRead, error_responses

router = APIRouter(prefix="/api/destinations", tags=["destinations"])

DestName = Path(min_length=1, max_length=200, description="The destination's name")


class NewDestination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict, description="The kind's settings, plus pii and admin_only")
    secrets: dict[str, str] = Field(default_factory=dict, description="Stored encrypted; never returned")


class DestinationChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settings: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment: str = Field(min_length=1, max_length=200)
    columns: list[str] | None = Field(default=None, max_length=500)
    delta: bool = Field(default=False, description="Only what changed since the last successful send")


class Attach(BaseModel):
    model_config = ConfigDict(extra="forbid")
    columns: list[str] | None = Field(default=None, max_length=500)


def _dest(ctx: Ctx) -> Any:
    from segmenta.destinations.service import Destinations

    return Destinations(ctx.segs)


@router.get("", responses=error_responses(*SIGNED_IN))
def list_destinations(ctx: UsersRead) -> list[dict[str, Any]]:
    return list(_dest(ctx).all())


@router.get("/kinds", responses=error_responses(*SIGNED_IN))
def list_kinds(ctx: UsersRead) -> list[dict[str, Any]]:
    """The kinds installed, each with the JSON schema of its settings and the names of its secrets."""
    from segmenta.destinations.service import Destinations

    return Destinations.kinds()


@router.post("", status_code=201, responses=error_responses(*SIGNED_IN, 409, 422))
def create_destination(body: NewDestination, ctx: UsersAdmin) -> dict[str, Any]:
    ctx.audit_object = f"destination {body.name}"
    ctx.audit_detail = f"kind {body.kind}"
    view: dict[str, Any] = _dest(ctx).create(
        body.name, kind=body.kind, sets=dict(body.settings), secret_values=dict(body.secrets), actor=ctx.user.username
    )
    return view


@router.get("/{name}", responses=error_responses(*SIGNED_IN, 404))
def get_destination(ctx: UsersRead, name: str = DestName) -> dict[str, Any]:
    view: dict[str, Any] = _dest(ctx).show(name)
    return view


@router.patch("/{name}", responses=error_responses(*SIGNED_IN, 404, 422))
def change_destination(body: DestinationChanges, ctx: UsersAdmin, name: str = DestName) -> dict[str, Any]:
    ctx.audit_object = f"destination {name}"
    ctx.audit_detail = "settings " + ", ".join(sorted(body.settings)) + ("; secrets replaced" if body.secrets else "")
    view: dict[str, Any] = _dest(ctx).update(
        name, sets=dict(body.settings), secret_values=dict(body.secrets), actor=ctx.user.username
    )
    return view


@router.delete("/{name}", responses=error_responses(*SIGNED_IN, 404))
def delete_destination(ctx: UsersAdmin, name: str = DestName) -> dict[str, Any]:
    ctx.audit_object = f"destination {name}"
    _dest(ctx).delete(name, actor=ctx.user.username)
    return {"deleted": name}


@router.post("/{name}/test", responses=error_responses(*SIGNED_IN, 404))
def test_destination(ctx: UsersAdmin, name: str = DestName) -> dict[str, Any]:
    ctx.audit_object = f"destination {name}"
    return {"ok": True, "message": _dest(ctx).test(name, actor=ctx.user.username)}


@router.post("/{name}/send", responses=error_responses(*SIGNED_IN, 404, 422))
def send_segment(body: SendRequest, ctx: UsersAdmin, name: str = DestName) -> dict[str, Any]:
    """Send a saved segment: ``{"rows", "calls", "retries", "rejected", "send_id"}``."""
    ctx.audit_object = f"destination {name}"
    ctx.audit_detail = f"segment {body.segment}"
    result, send_id = _dest(ctx).send(
        name,
        body.segment,
        columns=body.columns,
        mode="delta" if body.delta else "full",
        trigger="api",
        actor=ctx.user.username,
        pii_restricted=ctx.restricted,
    )
    return {**result.to_dict(), "send_id": send_id}


@router.get("/{name}/sends", responses=error_responses(*SIGNED_IN, 404))
def send_history(ctx: UsersRead, name: str = DestName) -> list[dict[str, Any]]:
    return list(_dest(ctx).history(name))


@router.get("/{name}/sends/{send_id}/rejected.csv", responses=error_responses(*SIGNED_IN, 404))
def rejected_ids(ctx: UsersRead, send_id: int, name: str = DestName) -> FileResponse:
    """The ids the receiver rejected in one send, as CSV."""
    path = _dest(ctx).rejected_file(name, send_id)
    return FileResponse(path, media_type="text/csv", filename=f"{name}-send-{send_id}-rejected.csv")


@router.put("/{name}/auto-send/{segment}", responses=error_responses(*SIGNED_IN, 404))
def attach(body: Attach, ctx: UsersAdmin, segment: str, name: str = DestName) -> dict[str, Any]:
    """Send ``segment`` here after each of its refreshes (what changed since the last send)."""
    ctx.audit_object = f"destination {name}"
    _dest(ctx).attach(name, segment, columns=body.columns, actor=ctx.user.username)
    return {"destination": name, "segment": segment, "auto_send": True}


@router.delete("/{name}/auto-send/{segment}", responses=error_responses(*SIGNED_IN, 404))
def detach(ctx: UsersAdmin, segment: str, name: str = DestName) -> dict[str, Any]:
    ctx.audit_object = f"destination {name}"
    _dest(ctx).detach(name, segment, actor=ctx.user.username)
    return {"destination": name, "segment": segment, "auto_send": False}
