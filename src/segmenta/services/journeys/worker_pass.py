"""The journeys' part of a worker pass (``segmenta worker --once``, the service's scheduler).

Called by :meth:`segmenta.services.worker.Worker.run_once` after the pass's refreshes, so the
journeys act on the membership those refreshes committed. It opens the workspace only when a
journey is live (a pass without journeys costs one store query).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from segmenta.store.journey_models import Journey


def advance_journeys(worker: Any, report: Any) -> None:
    """Advance every live journey to the current clock; failures go to ``report.failed`` (exit 1)."""
    from segmenta.services.journeys.service import LIVE, Journeys

    try:
        with worker.store.session() as s:
            live = int(s.scalar(select(func.count()).select_from(Journey).where(Journey.status == LIVE)) or 0)
        if not live:
            return
        if worker._segments is not None:
            with worker._segments() as segs:
                results = Journeys(segs).advance_all()
        else:
            from segmenta.services.lifecycle_base import open_workspace
            from segmenta.services.segments import Segments

            ws = open_workspace(worker.path, engine=worker.engine)
            try:
                results = Journeys(Segments(ws, worker.store)).advance_all()
            finally:
                ws.close()
    except Exception as exc:  # noqa: BLE001 - the refreshes of the pass stand
        report.failed.append(("(journeys)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return
    for r in results:
        getattr(report, "journeys", []).append(r)
        for e in r.errors:
            report.failed.append((f"journey {r.journey}", e))
