"""Work-assignment segments over REST (contract section 6): the CLI's commands under ``/api/assignment``.

Reads (list, show, simulate, history) are open to every role; creating, reordering,
activating and deactivating are edits of segments, allowed to the roles that build
segments (admin and marketer, the sales managers' stand-in until the service has such a
role). A definition is checked against the model the caller may see (no PII columns for a
restricted user) before anything is saved. All rules live in
:class:`segmenta.services.assignment.Assignments`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from segmenta.interfaces.api.auth import Create, Ctx, Edit, Read
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.model.validate import parse_definition
from segmenta.services.assignment import Assignments

router = APIRouter(prefix="/api/assignment", tags=["assignment"], responses=RESPONSES)


class NewAssignmentSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]
    name: str | None = Field(default=None, max_length=1000)
    priority: int | None = Field(default=None, ge=1, le=1_000_000)
    no_move: bool = False
    description: str | None = Field(default=None, max_length=10_000)


class PriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(ge=1, le=1_000_000)


def _wa(ctx: Ctx) -> Assignments:
    return Assignments(ctx.segs)


@router.get("/tables/{table}/segments")
def list_segments(ctx: Read, table: str) -> list[dict[str, Any]]:
    """The table's work-assignment segments in priority order, ``default`` last."""
    return _wa(ctx).list_segments(table)


@router.get("/tables/{table}/records/{key}")
def show_record(ctx: Read, table: str, key: str) -> dict[str, Any]:
    """The segment one record is in (``segment`` null when inactive or absent)."""
    return _wa(ctx).show(table, key)


@router.get("/tables/{table}/history")
def history(ctx: Read, table: str, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Routing history, newest first (of one record with ``key``)."""
    return _wa(ctx).history(table, key, limit=max(1, min(limit, 10_000)))


@router.post("/segments", status_code=201)
def create_segment(ctx: Create, body: NewAssignmentSegment) -> dict[str, Any]:
    """A draft work-assignment segment of the definition's audience table."""
    ctx.audit_object = str(body.name or body.definition.get("name") or "").strip()[:200]
    parse_definition(body.definition, ctx.model, limits=ctx.ws.limits)  # the caller's visible model first
    return _wa(ctx).create(
        body.definition, name=body.name, priority=body.priority, no_move=body.no_move, description=body.description
    )


@router.get("/segments/{name}")
def get_segment(ctx: Read, name: str) -> dict[str, Any]:
    return _wa(ctx).describe(name)


@router.post("/segments/{name}/activate")
def activate(ctx: Edit, name: str) -> dict[str, Any]:
    ctx.audit_object = name
    return _wa(ctx).activate(name)


@router.post("/segments/{name}/deactivate")
def deactivate(ctx: Edit, name: str) -> dict[str, Any]:
    ctx.audit_object = name
    return _wa(ctx).deactivate(name)


@router.put("/segments/{name}/priority")
def set_priority(ctx: Edit, name: str, body: PriorityBody) -> dict[str, Any]:
    """Move the segment to ``priority`` (1 is the highest); routes nothing."""
    ctx.audit_object = name
    return _wa(ctx).priority(name, body.priority)


@router.get("/segments/{name}/simulate")
def simulate(ctx: Read, name: str) -> dict[str, Any]:
    """``{"keys", "count"}``: what activating the segment now would route to it; changes nothing."""
    return _wa(ctx).simulate(name)


@router.post("/tables/{table}/rerun")
def rerun(ctx: Edit, table: str) -> dict[str, Any]:
    """Apply the order in force to every record its segment lets move; what moved."""
    ctx.audit_object = table
    return _wa(ctx).rerun(table)


# -- rules, the unassigned queue and sellers (issue 12 items 2 and 3) ------------------------------


def _rules(ctx: Ctx) -> Any:
    from segmenta.services.assignment_rules import Rules

    return Rules(_wa(ctx))


class RuleActive(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool


@router.get("/segments/{name}/rules")
def list_rules(ctx: Read, name: str) -> list[dict[str, Any]]:
    """The segment's assignment rules in evaluation order."""
    rules: list[dict[str, Any]] = _rules(ctx).list_rules(name)
    return rules


@router.post("/segments/{name}/rules", status_code=201)
def add_rule(ctx: Create, name: str, body: dict[str, Any], position: int | None = None) -> dict[str, Any]:
    """Add an inactive rule (the rule file's JSON) at ``position`` (default last)."""
    ctx.audit_object = name
    added: dict[str, Any] = _rules(ctx).add(name, body, position=position)
    return added


@router.put("/segments/{name}/rules/{rule}/active")
def set_rule_active(ctx: Edit, name: str, rule: str, body: RuleActive) -> list[dict[str, Any]]:
    """Activate (at most 10 per segment) or deactivate a rule."""
    ctx.audit_object = f"{name}/{rule}"
    rules: list[dict[str, Any]] = _rules(ctx).set_active(name, rule, body.active)
    return rules


@router.get("/tables/{table}/queue")
def unassigned(ctx: Read, table: str) -> list[dict[str, Any]]:
    """Records no seller could take, with the reason (no_rule, pool_empty, at_capacity, unavailable)."""
    _wa(ctx)._table(table)
    rows: list[dict[str, Any]] = _rules(ctx).queue(table)
    return rows


@router.post("/tables/{table}/queue/retry")
def retry_queue(ctx: Edit, table: str) -> dict[str, int]:
    ctx.audit_object = table
    _wa(ctx)._table(table)
    counts: dict[str, int] = _rules(ctx).retry(table)
    return counts


@router.get("/sellers/{table}/{key}")
def seller(ctx: Read, table: str, key: str) -> dict[str, Any]:
    """One seller's load against capacity, availability now and assigned records."""
    info: dict[str, Any] = _rules(ctx).seller(table, key)
    return info
