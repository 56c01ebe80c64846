"""Store tables of work assignment (contract section 6, issue 12), revision 0006.

Work-assignment segments are not saved segments: they form one priority list per table and
each active record of that table is in exactly one of them (``assignment_members``). Every
change of a record's segment is kept in ``assignment_history`` (who moved where, when, why).
Assignment rules and the decisions they make (a seller, or the unassigned queue, with the
reason) are ``assignment_rules`` and ``assignment_decisions``.

Record keys are kept as text (``str(key)``); the audience key's model type turns them back.
Times are naive UTC (``segmenta.clock.now()``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmenta.store.models import Base


class AssignmentSegment(Base):
    """One work-assignment segment of a table, or the table's built-in ``default`` (``is_default``).

    ``position`` is 1..n over the table's non-default segments (1 is the highest priority);
    the default has none and always comes last. ``status`` is draft, active or inactive
    (the default is always active). ``no_move``: a record routed here keeps this segment
    on later updates while the segment is active (``--no-move``).
    """

    __tablename__ = "assignment_segments"
    __table_args__ = (UniqueConstraint("table_name", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    table_name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    no_move: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class AssignmentMember(Base):
    """The one segment an active record of ``table_name`` is in now."""

    __tablename__ = "assignment_members"

    table_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("assignment_segments.id"), index=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AssignmentHistory(Base):
    """One routing decision that changed a record's segment: from, to (None: out of every segment), when and why."""

    __tablename__ = "assignment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    table_name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(400), index=True)
    from_segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(40))  # created | updated | related | activate | deactivate | ...
    detail: Mapped[str] = mapped_column(Text, default="")


class AssignmentRule(Base):
    """An assignment rule of a work-assignment segment: evaluated top-down (``position``), first match wins.

    ``spec`` holds the rule: record conditions, ``created_within_hours``, the seller pool and
    the distribution (see :mod:`segmenta.services.assignment_rules`).
    """

    __tablename__ = "assignment_rules"
    __table_args__ = (UniqueConstraint("segment_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("assignment_segments.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AssignmentDecision(Base):
    """A record's assignment to a seller (``status`` assigned) or its place in the unassigned queue (``queued``).

    ``reason`` says why: the rule and the pool considered and why this seller, or why nobody
    (no_rule, pool_empty, at_capacity, unavailable). The newest decision of a record is its
    assignment; ``seller_last_at`` of round robin reads them.
    """

    __tablename__ = "assignment_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    table_name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(400), index=True)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seller: Mapped[str | None] = mapped_column(String(400), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # assigned | queued | released
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    current: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
