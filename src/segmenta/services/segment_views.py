"""The read side of saved segments: show, list, versions, refresh history, members."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from segmenta.services.states import StaticType, Status
from segmenta.store.models import RefreshRun, Segment, SegmentVersion, Usage

if TYPE_CHECKING:
    from segmenta.store.database import Store


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _wall() -> dt.datetime:
    """Wall-clock UTC, naive: leases are wall time (they guard against crashed workers, not simulated time)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def pending_version(seg: Segment) -> int | None:
    """The saved version not yet live: a published segment's draft, or a segment's version never evaluated."""
    if seg.draft_version is not None:
        return seg.draft_version
    if seg.static_type != StaticType.LIST and seg.live_version != seg.current_version:
        return seg.current_version
    return None


def lease_of(seg: Segment) -> dict[str, str | None] | None:
    """The worker's claim on the segment while it lasts: ``{"owner", "until"}`` (until in UTC)."""
    if seg.lease_until is None or seg.lease_until <= _wall():
        return None
    return {"owner": seg.lease_owner, "until": seg.lease_until.isoformat(timespec="seconds")}


def waiting_reason(seg: Segment) -> str | None:
    """Why the segment is not simply up to date now: a worker's lease, an error, a publish under way."""
    lease = lease_of(seg)
    if lease is not None:
        return f"refresh lease held by {lease['owner']} until {lease['until']} UTC"
    if seg.status == Status.ERROR:
        return f"error: {seg.status_reason}"
    if seg.status == Status.GOING_LIVE:
        return "publishing: the evaluation has not finished"
    return None


class SegmentViews:
    """Mixin: read-only views (needs ``store``, ``_get`` and ``membership``)."""

    store: Store

    def _get(self, s: Session, name: Any) -> Segment:  # pragma: no cover - provided by SegmentsBase
        raise NotImplementedError

    def membership(self, seg: Segment) -> Any:  # pragma: no cover - provided by SegmentsBase
        raise NotImplementedError

    def show(self, name: str | int) -> dict[str, Any]:
        """Everything about one segment (``--json`` of ``segment show``)."""
        with self.store.session() as s:
            return self.show_in(s, self._get(s, name))

    def show_in(self, s: Session, seg: Segment, *, graph: Mapping[str, set[str]] | None = None) -> dict[str, Any]:
        """One segment as JSON: the contract's fields, ids and versions, schedule, users, and why it waits."""
        from segmenta.services.segment_graph import readers, reference_graph

        graph = reference_graph(s, drafts=True) if graph is None else graph
        reading = set(readers(graph, seg.name))
        segment_users = (
            s.execute(
                select(Segment.id, Segment.name, Segment.status)
                .where(Segment.name.in_(reading), Segment.deleted_at.is_(None))
                .order_by(Segment.name)
            ).all()
            if reading
            else []
        )
        users = s.execute(
            select(Usage.user_kind, Usage.user_name, Usage.role).where(Usage.segment_id == seg.id, Usage.active)
        ).all()
        return {
            "id": seg.id,
            "name": seg.name,
            "status": seg.status,
            "status_reason": seg.status_reason,
            "kind": seg.kind,
            "static_type": seg.static_type,
            "audience": seg.audience,
            "version": seg.draft_version or seg.current_version,  # the newest saved version
            "current_version": seg.current_version,  # the version in force (refreshes evaluate it)
            "live_version": seg.live_version,
            "draft_version": pending_version(seg),
            "has_draft": pending_version(seg) is not None,
            "size": seg.size or 0,
            "created_at": _iso(seg.created_at),
            "updated_at": _iso(seg.updated_at),
            "published_at": _iso(seg.published_at),
            "last_refresh_at": _iso(seg.last_refresh_at),
            "next_refresh_at": _iso(seg.next_refresh_at),
            "last_used_at": _iso(seg.last_used_at),
            "deleted": seg.deleted_at is not None,
            "settings": seg.settings or {},
            "used_by": [{"kind": "segment", "name": n, "role": "in_segment", "id": i, "status": st} for i, n, st in segment_users]
            + [{"kind": k, "name": n, "role": r} for k, n, r in users],
            "lease": lease_of(seg),
            "waiting": waiting_reason(seg),
        }

    def list_segments(self, *, deleted: bool = False) -> list[dict[str, Any]]:
        """Every segment (deleted ones only with ``deleted``), by name."""
        from segmenta.services.segment_graph import reference_graph

        with self.store.session() as s:
            q = select(Segment).order_by(Segment.name)
            if not deleted:
                q = q.where(Segment.deleted_at.is_(None))
            graph = reference_graph(s, drafts=True)
            return [self.show_in(s, seg, graph=graph) for seg in s.scalars(q)]

    def versions(self, name: str | int) -> list[dict[str, Any]]:
        """Every saved version, oldest first, with its definition."""
        with self.store.session() as s:
            seg = self._get(s, name)
            rows = s.scalars(select(SegmentVersion).where(SegmentVersion.segment_id == seg.id).order_by(SegmentVersion.version))
            pending = pending_version(seg)
            return [
                {
                    "version": v.version,
                    "created_at": _iso(v.created_at),
                    "definition": v.definition,
                    "live": v.version == seg.live_version,
                    "draft": v.version == pending,
                }
                for v in rows
            ]

    def history(self, name: str | int) -> list[dict[str, Any]]:
        """Refreshes and membership changes, oldest first: time, trigger, version, size, entered, exited."""
        with self.store.session() as s:
            seg = self._get(s, name)
            runs = s.scalars(select(RefreshRun).where(RefreshRun.segment_id == seg.id).order_by(RefreshRun.id))
            # a record change or clock move that moved nobody in this segment is no news: left out
            quiet = {"records", "clock"}
            return [
                {
                    "refresh": r.id,
                    "at": _iso(r.started_at),
                    "trigger": r.trigger,
                    "status": r.status,
                    "version": r.version,
                    "size": r.size,
                    "entered": r.entered,
                    "exited": r.exited,
                    "message": r.message,
                }
                for r in runs
                if not (r.trigger in quiet and r.status == "done" and not r.entered and not r.exited)
            ]

    def record_history(self, name: str | int, key: Any) -> list[dict[str, Any]]:
        """When one record entered and exited the segment, oldest first."""
        seg = self._detached(name)
        rows = self.membership(seg).record_history(key)
        return [{"at": _iso(r["at"]), "change": r["change"], "version": r["version"], "refresh": r["refresh_id"]} for r in rows]

    def members(self, name: str | int) -> tuple[str, list[Any]]:
        """(key column, stored member keys ascending); no re-evaluation."""
        seg = self._detached(name)
        m = self.membership(seg)
        return m.key, m.keys()

    def _detached(self, name: str | int) -> Segment:
        with self.store.session() as s:
            return self._get(s, name)


def find_segment(s: Session, ref: str | int) -> Segment:
    """A segment not deleted, by id (an int) or by name; NotFound with a hint otherwise."""
    from segmenta.errors import NotFound, Problem
    from segmenta.model.schema import hint

    if not isinstance(ref, str):
        seg = s.scalar(select(Segment).where(Segment.id == ref, Segment.deleted_at.is_(None)))
        if seg is None:
            raise NotFound([Problem(f"segment id {ref}", "no saved segment has this id")])
        return seg
    seg = s.scalar(select(Segment).where(Segment.name == ref, Segment.deleted_at.is_(None)))
    if seg is None:
        names = s.scalars(select(Segment.name).where(Segment.deleted_at.is_(None))).all()
        raise NotFound([Problem(ref, f"no saved segment has this name{hint(ref, names)}")])
    return seg


class StoredSegments(SegmentViews):
    """The read side on the metadata store alone, without the data engine.

    For show, list, versions and history while another process (a worker refreshing, ``serve``)
    holds the workspace's data file: what the store knows, sizes as of the last finished refresh.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def _get(self, s: Session, name: Any) -> Segment:
        return find_segment(s, name)

    def membership(self, seg: Segment) -> Any:
        from segmenta.errors import Problem, RejectedInput

        raise RejectedInput([Problem(seg.name, "its members are in the workspace's data, which another process holds now")])
