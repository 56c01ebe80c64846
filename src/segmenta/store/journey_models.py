"""Store tables of journeys (contract section 7, issue 13), revision 0007.

- ``journeys``: one row per journey: its file (``definition``), status (draft, live, stopped),
  the membership-event offset it has read up to (``event_offset``), and a worker's lease.
- ``journey_states``: one row per record *and entry* (``run`` counts entries, for
  ``frequency: reenter``): where the record is (``step``), since when (``arrived_s``) and
  its durable timer (``due_s``). Times here are integer seconds since the epoch (UTC), so a
  whole step's timers move with one portable ``UPDATE ... SET due_s = due_s + N`` on SQLite
  and PostgreSQL alike, without per-row date arithmetic in Python.
- ``journey_outbox``: one row per record, entry and send step: the exactly-once ledger.
  A row is committed as ``sending`` before the SMTP call and carries the message's
  ``Message-ID``, derived from (journey, record, run, step); see :mod:`segmenta.services.journeys.outbox`.

Record keys are kept as text (``str(key)``); the audience key's model type turns them back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmenta.store.models import Base


class Journey(Base):
    """A journey: its validated file, status and the point of the membership events it has consumed."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    audience: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)  # draft | live | stopped
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: The last membership event (``segmenta.services.events``) this journey has acted on.
    event_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: A worker's claim while it advances the journey; wall time (a killed worker's claim lapses).
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(300), nullable=True)


class JourneyState(Base):
    """Where one record is in one journey, for one entry (``run``)."""

    __tablename__ = "journey_states"
    __table_args__ = (
        UniqueConstraint("journey_id", "record_key", "run"),
        Index("ix_journey_states_due", "journey_id", "status", "step", "due_s"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), index=True)
    record_key: Mapped[str] = mapped_column(String(200))
    run: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20))  # active | exited | finished
    step: Mapped[str | None] = mapped_column(String(100), nullable=True)
    arrived_s: Mapped[int] = mapped_column(BigInteger)
    due_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entered_s: Mapped[int] = mapped_column(BigInteger)
    left_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The event offset the journey had read when the record entered / left (re-entry needs a later join).
    entry_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    left_offset: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exit_segment: Mapped[str | None] = mapped_column(String(200), nullable=True)


class JourneyOutbox(Base):
    """One message of one record, entry and step: ``sending`` -> ``delivering`` -> ``sent`` (or skipped/failed)."""

    __tablename__ = "journey_outbox"
    __table_args__ = (UniqueConstraint("journey_id", "record_key", "run", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), index=True)
    record_key: Mapped[str] = mapped_column(String(200))
    run: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    message_id: Mapped[str] = mapped_column(String(300))
    recipient: Mapped[str | None] = mapped_column(String(320), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
