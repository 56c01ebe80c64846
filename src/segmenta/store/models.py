"""The metadata store's tables (SQLAlchemy 2 declarative models).

Only metadata lives here: segments, their definition versions, statuses, refresh
runs with their counts, who uses a segment, and an audit trail. Membership and its
history live in the data engine (see :mod:`segmenta.services.membership_store`), so
a refresh of millions of members never round-trips through this store.

Times are naive UTC (``segmenta.clock.now()``), except ``lease_until`` which is wall
time: it guards against a crashed worker, not against simulated time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("draft", "going_live", "live", "stopped", "expired", "error")


class Base(DeclarativeBase):
    """Declarative base of every store table."""


class Segment(Base):
    """One saved segment.

    ``current_version`` is the version in force: what publish evaluated and refreshes
    re-evaluate. An edit of a published segment saves a newer version as ``draft_version``
    (revision 0005), which waits there until publish makes it current; the live membership
    does not change before that (contract 5.1). Statuses and kinds are the values of
    :mod:`segmenta.services.states`.
    """

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    audience: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # dynamic | static
    static_type: Mapped[str | None] = mapped_column(String(20), nullable=True)  # snapshot | list
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    live_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: A saved version newer than ``current_version``, not yet published (revision 0005).
    draft_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_refresh_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    next_refresh_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: A worker's claim while it refreshes, renewed as it runs; wall time, so a killed worker's claim lapses.
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Per-segment overrides of the workspace's ``segments:`` config (revision 0002).
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SegmentVersion(Base):
    """One saved definition of a segment; versions are never changed or removed."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


class RefreshRun(Base):
    """One evaluation or membership change of a segment, with its counts."""

    __tablename__ = "refresh_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trigger: Mapped[str] = mapped_column(String(20))  # publish | refresh | worker | dependency | import | add | remove
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # running | done | error
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    entered: Mapped[int | None] = mapped_column(Integer, nullable=True)
    exited: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class Usage(Base):
    """Something that uses a segment (a journey, a destination, work assignment), active or not (revision 0002)."""

    __tablename__ = "segment_usages"
    __table_args__ = (UniqueConstraint("segment_id", "user_kind", "user_name", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), index=True)
    user_kind: Mapped[str] = mapped_column(String(40))
    user_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who did what to which segment, when (revision 0002)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
