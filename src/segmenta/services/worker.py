"""The worker: due refreshes (in dependency order) and expiry, for ``segmenta worker``.

Several workers may share one store. A worker claims a due segment before refreshing it:
on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED`` then a lease, on SQLite (one
writer at a time) with a conditional UPDATE of the lease. The lease is wall-clock time so a
crashed worker's claim lapses. The DuckDB file is single-writer across processes, so the
worker opens the workspace per job (retrying briefly while it is locked) and never holds it
while idle.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, or_, select, update

from segmenta import clock
from segmenta.errors import SegmentaError
from segmenta.services.lifecycle_base import RefreshResult, open_workspace
from segmenta.services.segment_config import SegmentConfig
from segmenta.services.segment_graph import dependency_order, readers, reference_graph
from segmenta.store.database import Store, resolve_url
from segmenta.store.models import Segment, Usage

LEASE = dt.timedelta(minutes=30)


@dataclass
class PassReport:
    """What one pass did."""

    refreshed: list[RefreshResult] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Worker:
    """Runs due refreshes and expiry checks of one workspace's saved segments."""

    def __init__(
        self, workspace: str | Path, *, store_url: str | None = None, owner: str | None = None, engine: str | None = None
    ) -> None:
        self.path = Path(workspace)
        self.engine = engine  # overrides segmenta.yaml's engine (the --engine option)
        cfg_file = self.path / "segmenta.yaml"
        ws_config = (yaml.safe_load(cfg_file.read_text(encoding="utf-8")) or {}) if cfg_file.is_file() else {}
        self.config = SegmentConfig.from_workspace(ws_config)
        self.store_url = store_url
        self.store = Store(resolve_url(self.path, ws_config, store_url))
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"

    def close(self) -> None:
        self.store.close()

    def run_once(self) -> PassReport:
        report = PassReport()
        self.touch_used()
        report.expired = self.expire()
        for seg_id, name in self.due():
            if not self.claim(seg_id):
                report.skipped.append(name)
                continue
            try:
                report.refreshed.append(self._refresh(name))
            except SegmentaError as exc:
                report.failed.append((name, str(exc).splitlines()[0]))
                self._mark_error(seg_id, exc)
            except Exception as exc:  # e.g. the DuckDB file stayed locked: transient, retried next pass
                report.failed.append((name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
            finally:
                self.release(seg_id)
        return report

    def run_forever(self, interval: float = 60.0) -> None:  # pragma: no cover - exercised by hand
        while True:
            self.run_once()
            time.sleep(interval)

    # -- steps --------------------------------------------------------------------------

    def touch_used(self) -> None:
        """A segment with an active user is in use now."""
        with self.store.session() as s:
            used = select(Usage.segment_id).where(Usage.active)
            s.execute(update(Segment).where(Segment.id.in_(used)).values(last_used_at=clock.now()))

    def expire(self) -> list[str]:
        """Mark live dynamic segments unused for their expiry period ``expired`` (no data is dropped)."""
        now = clock.now()
        done: list[str] = []
        with self.store.session() as s:
            graph = reference_graph(s)
            live = set(s.scalars(select(Segment.name).where(Segment.status == "live", Segment.deleted_at.is_(None))))
            used = set(s.scalars(select(Usage.segment_id).where(Usage.active)))
            q = select(Segment).where(Segment.status == "live", Segment.kind == "dynamic", Segment.deleted_at.is_(None))
            for seg in s.scalars(q.with_for_update(skip_locked=True) if self.store.postgres else q):
                last = max(t for t in (seg.last_used_at, seg.published_at, seg.created_at) if t is not None)
                days = self.config.for_segment(seg.settings).expiry_days
                if seg.id in used or any(r in live for r in readers(graph, seg.name)) or now < last + dt.timedelta(days=days):
                    continue
                seg.status, seg.status_reason = "expired", f"unused for {days} days (last used {last.isoformat()})"
                seg.next_refresh_at = None
                done.append(seg.name)
        return done

    def due(self) -> list[tuple[int, str]]:
        """(id, name) of the segments due for a refresh, readers after the segments they read."""
        with self.store.session() as s:
            rows = s.execute(select(Segment.id, Segment.name).where(self._due_clause())).all()
            order = dependency_order([n for _, n in rows], reference_graph(s))
        ids = {n: i for i, n in rows}
        return [(ids[n], n) for n in order]

    def _due_clause(self) -> Any:
        return and_(
            Segment.status == "live",
            Segment.kind == "dynamic",
            Segment.deleted_at.is_(None),
            Segment.next_refresh_at <= clock.now(),
            or_(Segment.lease_until.is_(None), Segment.lease_until < _wall()),
        )

    def claim(self, seg_id: int) -> bool:
        """Take the lease on a still-due segment; False if another worker has it or did it."""
        lease = {"lease_until": _wall() + LEASE, "lease_owner": self.owner}
        with self.store.session() as s:
            if self.store.postgres:
                got = s.scalar(
                    select(Segment.id).where(Segment.id == seg_id, self._due_clause()).with_for_update(skip_locked=True)
                )
                if got is None:
                    return False
                s.execute(update(Segment).where(Segment.id == seg_id).values(**lease))
                return True
            result = s.execute(update(Segment).where(Segment.id == seg_id, self._due_clause()).values(**lease))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, seg_id: int) -> None:
        with self.store.session() as s:
            s.execute(
                update(Segment)
                .where(Segment.id == seg_id, Segment.lease_owner == self.owner)
                .values(lease_until=None, lease_owner=None)
            )

    def _refresh(self, name: str) -> RefreshResult:
        from segmenta.services.segments import Segments

        ws = open_workspace(self.path, engine=self.engine)
        try:
            return Segments(ws, self.store).refresh(name, trigger="worker")
        finally:
            ws.close()

    def _mark_error(self, seg_id: int, exc: Exception) -> None:
        with self.store.session() as s:
            seg = s.get(Segment, seg_id)
            if seg is not None and seg.status == "live":
                seg.status, seg.status_reason, seg.next_refresh_at = "error", str(exc).splitlines()[0][:500], None
