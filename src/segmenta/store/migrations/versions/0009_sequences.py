"""Sales sequences (issue 13 item 2): sequences, per-record sequence states with durable timers, activities.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sequences",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("assignment_segments.id"), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("activated_at", sa.DateTime, nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("lease_owner", sa.String(300), nullable=True),
    )
    op.create_table(
        "sequence_states",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sequence_id", sa.Integer, sa.ForeignKey("sequences.id"), nullable=False, index=True),
        sa.Column("record_key", sa.String(400), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step", sa.String(100), nullable=True),
        sa.Column("arrived_s", sa.BigInteger, nullable=False),
        sa.Column("due_s", sa.BigInteger, nullable=True),
        sa.Column("entered_s", sa.BigInteger, nullable=False),
        sa.Column("segment_id", sa.Integer, nullable=True),
        sa.Column("left_s", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.String(100), nullable=True),
        sa.UniqueConstraint("sequence_id", "record_key", "run"),
    )
    op.create_index("ix_sequence_states_due", "sequence_states", ["sequence_id", "status", "step", "due_s"])
    op.create_table(
        "sequence_activities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sequence_id", sa.Integer, sa.ForeignKey("sequences.id"), nullable=False, index=True),
        sa.Column("record_key", sa.String(400), nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("seller", sa.String(400), nullable=True, index=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("due_s", sa.BigInteger, nullable=False),
        sa.Column("done_s", sa.BigInteger, nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("opened_s", sa.BigInteger, nullable=True),
        sa.Column("replied_s", sa.BigInteger, nullable=True),
        sa.Column("clicked_s", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("sequence_id", "record_key", "run", "step"),
    )


def downgrade() -> None:
    op.drop_table("sequence_activities")
    op.drop_index("ix_sequence_states_due", table_name="sequence_states")
    op.drop_table("sequence_states")
    op.drop_table("sequences")
