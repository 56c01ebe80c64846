"""The service's audit log: who changed what, when, and how it ended.

Every mutating API call is recorded, allowed or not. Entries never carry secrets:
callers pass object names and short outcomes, never request bodies.

Calls refused before anyone is signed in (no or a bad credential, a failed or throttled
sign-in, a cross-origin request) could be made by anyone at any rate, so they are
aggregated: :func:`record_refusal` keeps ONE row per client address, user name, outcome and
minute, and counts the calls in it (``count``), naming the actions seen in ``detail``.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from segmenta import clock
from segmenta.store.auth_models import AuditLog
from segmenta.store.database import Store

_LOCK = threading.Lock()


def _text(value: str | None, limit: int) -> str:
    """What a store column can hold: no NUL (PostgreSQL refuses it), at most ``limit`` characters."""
    return (value or "").replace("\x00", "\ufffd")[:limit]


def record(store: Store, *, user: str | None, action: str, obj: str = "", outcome: str = "ok", detail: str = "") -> None:
    """Append one entry (``user`` None: the caller was not signed in)."""
    with store.session() as s:
        s.add(
            AuditLog(
                at=clock.now(),
                username=_text(user, 200) if user is not None else None,
                action=_text(action, 60),
                object=_text(obj, 400),
                outcome=_text(outcome, 40),
                detail=_text(detail, 2000),
                count=1,
            )
        )


def record_refusal(
    store: Store, *, address: str, action: str, obj: str = "", outcome: str = "unauthenticated", user: str | None = None
) -> None:
    """Count a refused call in this minute's row for (``address``, ``user``, ``outcome``), adding a row only for the first."""
    now = clock.now()
    minute = now.replace(second=0, microsecond=0)
    where = _text(f"client {address}", 300)
    username = _text(user, 200) if user is not None else None
    action = _text(action, 60)
    with _LOCK, store.session() as s:
        q = select(AuditLog).where(
            AuditLog.at >= minute, AuditLog.outcome == outcome, AuditLog.detail.startswith(where + ";", autoescape=True)
        )
        q = q.where(AuditLog.username.is_(None) if username is None else AuditLog.username == username)
        row = s.scalars(q.order_by(AuditLog.id.desc()).limit(1)).first()
        if row is None:
            s.add(
                AuditLog(
                    at=now,
                    username=username,
                    action=action,
                    object=_text(obj, 400),
                    outcome=_text(outcome, 40),
                    detail=f"{where}; actions: {action}",
                    count=1,
                )
            )
            return
        row.count = (row.count or 1) + 1
        seen = row.detail.split("; actions: ", 1)[-1].split(", ")
        if action not in seen and len(row.detail) + len(action) < 1900:
            row.detail = f"{row.detail}, {action}"


def entries(store: Store, *, limit: int = 100, user: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` entries first, optionally of one user or one action."""
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(max(1, min(limit, 10_000)))
    if user is not None:
        q = q.where(AuditLog.username == _text(user, 200))
    if action is not None:
        q = q.where(AuditLog.action == _text(action, 60))
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
                "count": e.count or 1,
            }
            for e in s.scalars(q)
        ]
