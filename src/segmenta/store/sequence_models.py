"""Store tables of sales sequences (issue 13 item 2), revision 0009.

- ``sequences``: one row per sequence: its file, status (``draft``, ``active``, ``inactive``)
  and the work-assignment segment it is connected to (at most one sequence per segment).
- ``sequence_states``: one row per record and start (``run``), like ``journey_states``: the
  step it is at, since when (``arrived_s``) and its durable timer (``due_s``, epoch seconds
  on the injectable clock), the work-assignment segment that started it (leaving that
  segment ends it) and when the record was last seen out of that segment (``left_s``: a
  record that comes back starts again).
- ``sequence_activities``: one row per record, start and step that creates something: a
  seller's email, phone call or task, an automated email, a field update. The unique
  (sequence, record, run, step) is the idempotency key that makes each exactly once; an
  automated email's row is its outbox ledger (``sending`` -> ``delivering`` -> ``sent``, as
  :mod:`segmenta.services.journeys.outbox`); ``opened_s``/``replied_s``/``clicked_s`` are the
  tracked events condition steps read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

import segmenta.store.assignment_models  # noqa: F401 - sequences.segment_id references assignment_segments
from segmenta.store.models import Base


class Sequence(Base):
    __tablename__ = "sequences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    table_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment_segments.id"), nullable=True, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    #: One worker at a time advances a sequence (as journeys: a lease tied to a lock file of its process).
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(300), nullable=True)


class SequenceState(Base):
    __tablename__ = "sequence_states"
    __table_args__ = (
        UniqueConstraint("sequence_id", "record_key", "run"),
        Index("ix_sequence_states_due", "sequence_id", "status", "step", "due_s"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id"), index=True)
    record_key: Mapped[str] = mapped_column(String(400))
    run: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # active | finished | ended
    step: Mapped[str | None] = mapped_column(String(100), nullable=True)
    arrived_s: Mapped[int] = mapped_column(BigInteger)
    due_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entered_s: Mapped[int] = mapped_column(BigInteger)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    left_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SequenceActivity(Base):
    __tablename__ = "sequence_activities"
    __table_args__ = (UniqueConstraint("sequence_id", "record_key", "run", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id"), index=True)
    record_key: Mapped[str] = mapped_column(String(400))
    run: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    seller: Mapped[str | None] = mapped_column(String(400), nullable=True, index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), index=True)  # open | done | skipped | sending | delivering | sent | failed
    due_s: Mapped[int] = mapped_column(BigInteger)
    done_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    opened_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    replied_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    clicked_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
