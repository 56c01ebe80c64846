"""Who uses a segment: journeys (and later destinations, work assignment) register here.

A segment in use by an active user cannot be stopped, deleted or set to draft (the
refusal lists the users), is refreshed on the in-use cadence when the user is a journey,
and does not expire. Only live segments can be put to use.

Example (a journey going live)::

    register_usage(segs, "Gold", kind="journey", user="Welcome", role="entry")
    ...
    unregister_usage(segs, "Gold", kind="journey", user="Welcome", role="entry")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from segmenta import clock
from segmenta.errors import Problem, RejectedInput
from segmenta.services import limits
from segmenta.services.states import Kind, Status
from segmenta.store.models import Segment, Usage

if TYPE_CHECKING:
    from segmenta.services.segments import Segments


def register_usage(segs: Segments, name: str, *, kind: str, user: str, role: str = "") -> None:
    """Mark ``name`` as used by ``kind``/``user`` (active); the segment must be live. Limits apply."""
    now = clock.now()
    with segs.store.session() as s:
        seg = segs._get(s, name)
        if seg.status != Status.LIVE:
            raise RejectedInput([Problem(name, f"is {seg.status}; only live segments can be used by a {kind}")])
        usage = s.scalar(
            select(Usage).where(Usage.segment_id == seg.id, Usage.user_kind == kind, Usage.user_name == user, Usage.role == role)
        )
        if usage is not None and usage.active:
            return
        if kind == "work_assignment":
            used = s.scalar(select(func.count(func.distinct(Usage.segment_id))).where(Usage.user_kind == kind, Usage.active))
            limits.check(segs.config.limits, "work_assignment", int(used or 0))
        if kind == "journey" and role == "entry":
            used = s.scalar(
                select(func.count())
                .select_from(Usage)
                .where(Usage.user_kind == kind, Usage.user_name == user, Usage.role == role, Usage.active)
            )
            limits.check(segs.config.limits, "journey_entry", int(used or 0))
        if usage is None:
            s.add(Usage(segment_id=seg.id, user_kind=kind, user_name=user, role=role, active=True, since=now, updated_at=now))
        else:
            usage.active, usage.updated_at = True, now
        seg.last_used_at = now
        segs._audit(s, seg, "use", f"{kind} {user} {role}".strip())
        _reschedule(segs, s, seg)


def unregister_usage(segs: Segments, name: str, *, kind: str, user: str, role: str = "") -> None:
    """The user stopped using the segment (kept as an inactive row); counts as a last use."""
    now = clock.now()
    with segs.store.session() as s:
        seg = segs._get(s, name)
        usage = s.scalar(
            select(Usage).where(Usage.segment_id == seg.id, Usage.user_kind == kind, Usage.user_name == user, Usage.role == role)
        )
        if usage is None or not usage.active:
            return
        usage.active, usage.updated_at = False, now
        seg.last_used_at = now
        segs._audit(s, seg, "unuse", f"{kind} {user} {role}".strip())
        s.flush()
        _reschedule(segs, s, seg)


def usages(segs: Segments, name: str) -> list[dict[str, Any]]:
    with segs.store.session() as s:
        seg = segs._get(s, name)
        rows = s.scalars(select(Usage).where(Usage.segment_id == seg.id).order_by(Usage.id))
        return [{"kind": u.user_kind, "name": u.user_name, "role": u.role, "active": u.active} for u in rows]


def _reschedule(segs: Segments, s: Any, seg: Segment) -> None:
    """A change of use changes the cadence: the next refresh is due one new cadence after the last."""
    if seg.status == Status.LIVE and seg.kind == Kind.DYNAMIC and seg.last_refresh_at is not None:
        s.flush()
        seg.next_refresh_at = seg.last_refresh_at + segs._cadence(s, seg)
