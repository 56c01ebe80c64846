"""The service's audit log: who changed what, when, and how it ended.

Every mutating API call is recorded, allowed or not. Entries never carry secrets:
callers pass object names and short outcomes, never request bodies.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from segmenta import clock
from segmenta.store.auth_models import AuditLog
from segmenta.store.database import Store


def record(store: Store, *, user: str | None, action: str, obj: str = "", outcome: str = "ok", detail: str = "") -> None:
    """Append one entry (``user`` None: the caller was not signed in)."""
    with store.session() as s:
        s.add(
            AuditLog(
                at=clock.now(), username=user, action=action[:60], object=obj[:400], outcome=outcome[:40], detail=detail[:2000]
            )
        )


def entries(store: Store, *, limit: int = 100, user: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` entries first, optionally of one user or one action."""
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(max(1, min(limit, 10_000)))
    if user is not None:
        q = q.where(AuditLog.username == user)
    if action is not None:
        q = q.where(AuditLog.action == action)
    with store.session() as s:
        return [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "user": e.username,
                "action": e.action,
                "object": e.object,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in s.scalars(q)
        ]
