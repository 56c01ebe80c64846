"""Journeys over REST (contract 7's commands): list, create, show, publish, stop, report, advance.

The rules live in :class:`segmenta.services.journeys.Journeys`; this module shapes answers.
Permissions reuse the segment actions: creating a journey is building (``segments.create``),
publishing is ``segments.publish``, stopping ``segments.stop``, advancing one now is a
worker's run (``worker.run``); reading is for every role.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from segmenta.interfaces.api.auth import Create, Publish, Read, RunWorker, Stop
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.services.journeys import Journeys

router = APIRouter(prefix="/api/journeys", tags=["journeys"], responses=RESPONSES)

REPORT_KEYS = ("entered", "exited", "finished", "sent", "skipped", "failed", "at_step")


class NewJourney(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: The journey file's content (contract 7), as JSON.
    definition: dict[str, Any]


@router.get("")
def list_journeys(ctx: Read) -> list[dict[str, Any]]:
    """Every journey with its status."""
    return Journeys(ctx.segs).list_journeys()


@router.post("", status_code=201)
def create(body: NewJourney, ctx: Create) -> dict[str, Any]:
    """Save a journey as a draft (a draft of the same name is replaced; 422 names a bad field)."""
    ctx.audit_object = str(body.definition.get("name", ""))[:200]
    return Journeys(ctx.segs).create(body.definition)


@router.get("/{name}")
def show(name: str, ctx: Read) -> dict[str, Any]:
    """A journey's file, status and report."""
    return Journeys(ctx.segs).show(name)


@router.post("/{name}/publish")
def publish(name: str, ctx: Publish) -> dict[str, Any]:
    """Draft -> live: its segments are marked used (all must be live) and the entry segments' members enter."""
    ctx.audit_object = name
    return Journeys(ctx.segs).publish(name)


@router.post("/{name}/pause")
def pause(name: str, ctx: Stop) -> dict[str, Any]:
    """Live -> paused: no step runs and nobody enters; its segments stay in use."""
    ctx.audit_object = name
    return Journeys(ctx.segs).pause(name)


@router.post("/{name}/resume")
def resume(name: str, ctx: Publish) -> dict[str, Any]:
    """Paused -> live; the next pass catches up on what fell due meanwhile."""
    ctx.audit_object = name
    return Journeys(ctx.segs).resume(name)


@router.post("/{name}/stop")
def stop(name: str, ctx: Stop) -> dict[str, Any]:
    """Stop the journey and release its segments."""
    ctx.audit_object = name
    return Journeys(ctx.segs).stop(name)


@router.get("/{name}/report")
def report(name: str, ctx: Read) -> dict[str, Any]:
    """``{"entered", "exited", "finished", "sent", "skipped", "failed", "at_step"}``, plus ``exited_by`` segment."""
    data = Journeys(ctx.segs).report(name)
    return {**{k: data[k] for k in REPORT_KEYS}, "exited_by": data["exited_by"]}


@router.post("/{name}/advance")
def advance(name: str, ctx: RunWorker) -> dict[str, Any]:
    """Advance one live journey to the current clock now (a worker pass does every live one)."""
    ctx.audit_object = name
    return asdict(Journeys(ctx.segs).advance(name))
