"""Journeys (contract section 7): journeys, per-record journey states with durable timers, the send outbox.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("audience", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=True),
        sa.Column("stopped_at", sa.DateTime, nullable=True),
        sa.Column("event_offset", sa.BigInteger, nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("lease_owner", sa.String(300), nullable=True),
    )
    op.create_table(
        "journey_states",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("journey_id", sa.Integer, sa.ForeignKey("journeys.id"), nullable=False, index=True),
        sa.Column("record_key", sa.String(200), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step", sa.String(100), nullable=True),
        sa.Column("arrived_s", sa.BigInteger, nullable=False),
        sa.Column("due_s", sa.BigInteger, nullable=True),
        sa.Column("entered_s", sa.BigInteger, nullable=False),
        sa.Column("left_s", sa.BigInteger, nullable=True),
        sa.Column("entry_offset", sa.BigInteger, nullable=True),
        sa.Column("left_offset", sa.BigInteger, nullable=True),
        sa.Column("exit_segment", sa.String(200), nullable=True),
        sa.UniqueConstraint("journey_id", "record_key", "run"),
    )
    op.create_index("ix_journey_states_due", "journey_states", ["journey_id", "status", "step", "due_s"])
    op.create_table(
        "journey_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("journey_id", sa.Integer, sa.ForeignKey("journeys.id"), nullable=False, index=True),
        sa.Column("record_key", sa.String(200), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.UniqueConstraint("journey_id", "record_key", "run", "step"),
    )


def downgrade() -> None:
    op.drop_table("journey_outbox")
    op.drop_index("ix_journey_states_due", table_name="journey_states")
    op.drop_table("journey_states")
    op.drop_table("journeys")
