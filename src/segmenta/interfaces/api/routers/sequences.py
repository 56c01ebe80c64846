"""Sales sequences over REST (issue 13 item 2): the CLI's commands and the sellers' activities.

The rules live in :class:`segmenta.services.sequences.Sequences`; this module shapes answers.
Permissions reuse the segment actions: creating or connecting a sequence is building
(``segments.create``), activating ``segments.activate``, deactivating ``segments.stop``,
advancing one now is a worker's run (``worker.run``); reading and a seller's marking an
activity done or tracking an email are for every role (``read``), as a seller works their list.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from segmenta.interfaces.api.auth import Activate, Create, Read, RunWorker, Stop
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.services.sequences import Sequences

router = APIRouter(prefix="/api/sequences", tags=["sequences"], responses=RESPONSES)


class NewSequence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: The sequence file's content, as JSON.
    definition: dict[str, Any]


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment: str


class Done(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skip: bool = False


class Tracked(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: Literal["opened", "replied", "clicked"]


@router.get("")
def list_sequences(ctx: Read) -> list[dict[str, Any]]:
    """Every sequence with its status and segment."""
    return Sequences(ctx.segs).list_sequences()


@router.post("", status_code=201)
def create(body: NewSequence, ctx: Create) -> dict[str, Any]:
    """Save a sequence as a draft (422 names a bad field by its JSON pointer)."""
    ctx.audit_object = str(body.definition.get("name", ""))[:200]
    return Sequences(ctx.segs).create(body.definition)


@router.get("/activities")
def activities(ctx: Read, seller: str, all_open: bool = False) -> list[dict[str, Any]]:
    """A seller's open activities due today (overdue included); ``all_open``: every open one."""
    return Sequences(ctx.segs).activities(seller=seller, due_today=not all_open)


@router.get("/activities/{activity_id}")
def activity(activity_id: int, ctx: Read) -> dict[str, Any]:
    return Sequences(ctx.segs).activity(activity_id)


@router.post("/activities/{activity_id}/done")
def done(activity_id: int, body: Done, ctx: Read) -> dict[str, Any]:
    """Mark an activity done (or skipped); the record goes on to its next step."""
    ctx.audit_object = str(activity_id)
    return Sequences(ctx.segs).done(activity_id, skip=body.skip)


@router.post("/activities/{activity_id}/track")
def track(activity_id: int, body: Tracked, ctx: Read) -> dict[str, Any]:
    """Record an email opened, replied to or clicked (condition steps read it)."""
    return Sequences(ctx.segs).track(activity_id, body.event)


@router.get("/{name}")
def show(name: str, ctx: Read) -> dict[str, Any]:
    """A sequence's file, status, segment and report."""
    return Sequences(ctx.segs).show(name)


@router.post("/{name}/connect")
def connect(name: str, body: Connection, ctx: Create) -> dict[str, Any]:
    ctx.audit_object = name
    return Sequences(ctx.segs).connect(name, body.segment)


@router.post("/{name}/activate")
def activate(name: str, ctx: Activate) -> dict[str, Any]:
    ctx.audit_object = name
    return Sequences(ctx.segs).activate(name)


@router.post("/{name}/deactivate")
def deactivate(name: str, ctx: Stop) -> dict[str, Any]:
    ctx.audit_object = name
    return Sequences(ctx.segs).deactivate(name)


@router.post("/{name}/advance")
def advance(name: str, ctx: RunWorker) -> dict[str, Any]:
    r = Sequences(ctx.segs).advance(name)
    return {**asdict(r), "advanced_to": sorted(r.advanced_to)}
