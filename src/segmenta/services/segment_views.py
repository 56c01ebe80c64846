"""The read side of saved segments: show, list, versions, refresh history, members."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from segmenta.store.models import RefreshRun, Segment, SegmentVersion, Usage

if TYPE_CHECKING:
    from segmenta.services.membership_store import Membership
    from segmenta.store.database import Store


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SegmentViews:
    """Mixin: read-only views (needs ``store``, ``_get`` and ``membership``)."""

    store: Store

    def _get(self, s: Session, name: str) -> Segment:  # pragma: no cover - provided by SegmentsBase
        raise NotImplementedError

    def membership(self, seg: Segment) -> Membership:  # pragma: no cover - provided by SegmentsBase
        raise NotImplementedError

    def show(self, name: str) -> dict[str, Any]:
        """Everything about one segment (``--json`` of ``segment show``)."""
        with self.store.session() as s:
            return self.show_in(s, self._get(s, name))

    def show_in(self, s: Session, seg: Segment) -> dict[str, Any]:
        users = s.execute(
            select(Usage.user_kind, Usage.user_name, Usage.role).where(Usage.segment_id == seg.id, Usage.active)
        ).all()
        return {
            "name": seg.name,
            "status": seg.status,
            "status_reason": seg.status_reason,
            "kind": seg.kind,
            "static_type": seg.static_type,
            "audience": seg.audience,
            "version": seg.current_version,
            "live_version": seg.live_version,
            "size": seg.size or 0,
            "created_at": _iso(seg.created_at),
            "updated_at": _iso(seg.updated_at),
            "published_at": _iso(seg.published_at),
            "last_refresh_at": _iso(seg.last_refresh_at),
            "next_refresh_at": _iso(seg.next_refresh_at),
            "last_used_at": _iso(seg.last_used_at),
            "deleted": seg.deleted_at is not None,
            "settings": seg.settings or {},
            "used_by": [{"kind": k, "name": n, "role": r} for k, n, r in users],
        }

    def list_segments(self, *, deleted: bool = False) -> list[dict[str, Any]]:
        """Every segment (deleted ones only with ``deleted``), by name."""
        with self.store.session() as s:
            q = select(Segment).order_by(Segment.name)
            if not deleted:
                q = q.where(Segment.deleted_at.is_(None))
            return [self.show_in(s, seg) for seg in s.scalars(q)]

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every saved version, oldest first, with its definition."""
        with self.store.session() as s:
            seg = self._get(s, name)
            rows = s.scalars(select(SegmentVersion).where(SegmentVersion.segment_id == seg.id).order_by(SegmentVersion.version))
            return [{"version": v.version, "created_at": _iso(v.created_at), "definition": v.definition} for v in rows]

    def history(self, name: str) -> list[dict[str, Any]]:
        """Refreshes and membership changes, oldest first: time, trigger, version, size, entered, exited."""
        with self.store.session() as s:
            seg = self._get(s, name)
            runs = s.scalars(select(RefreshRun).where(RefreshRun.segment_id == seg.id).order_by(RefreshRun.id))
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
            ]

    def record_history(self, name: str, key: Any) -> list[dict[str, Any]]:
        """When one record entered and exited the segment, oldest first."""
        seg = self._detached(name)
        rows = self.membership(seg).record_history(key)
        return [{"at": _iso(r["at"]), "change": r["change"], "version": r["version"], "refresh": r["refresh_id"]} for r in rows]

    def members(self, name: str) -> tuple[str, list[Any]]:
        """(key column, stored member keys ascending); no re-evaluation."""
        seg = self._detached(name)
        m = self.membership(seg)
        return m.key, m.keys()

    def _detached(self, name: str) -> Segment:
        with self.store.session() as s:
            return self._get(s, name)
