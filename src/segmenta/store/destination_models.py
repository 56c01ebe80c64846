"""Store tables of destinations (revision 0008): where segments are sent, and every send.

A destination's secrets are kept only as one Fernet token (``secrets``) of their JSON,
encrypted with the workspace key (:mod:`segmenta.destinations.secrets`); nothing else in the
store, the logs or any answer carries them. A send keeps its progress in ``state`` (a JSON
checkpoint the destination writes as it goes), so a send killed part way resumes from it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmenta.store.models import Base


class Destination(Base):
    """A named place segments are sent to: a kind (``dynamics365-marketing``, ``file``, ...), its settings and secrets."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: A Fernet token of the secrets' JSON object, or None when the kind needs none.
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    admin_only: Mapped[bool] = mapped_column(Boolean, default=True)
    #: May columns marked ``pii: true`` be sent here?
    pii: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class DestinationSend(Base):
    """One send of a segment to a destination: what it sent, how it went, and its checkpoint."""

    __tablename__ = "destination_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    segment_id: Mapped[int] = mapped_column(Integer, index=True)
    #: The membership run sent (``MembershipStore.latest().run_id`` when the send began).
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mode: Mapped[str] = mapped_column(String(20))  # full | delta
    trigger: Mapped[str] = mapped_column(String(20))  # cli | api | refresh
    status: Mapped[str] = mapped_column(String(20))  # running | done | error
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    calls: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retries: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rejected: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rejected_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class DestinationAttachment(Base):
    """A destination a segment is sent to after each of its refreshes (a delta since the last send)."""

    __tablename__ = "destination_attachments"
    __table_args__ = (UniqueConstraint("destination_id", "segment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"), index=True)
    segment_id: Mapped[int] = mapped_column(Integer, index=True)
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
