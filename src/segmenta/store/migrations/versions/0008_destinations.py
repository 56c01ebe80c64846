"""Destinations: where segments are sent (settings, encrypted secrets, access), every send, and auto-send attachments.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("secrets", sa.Text, nullable=True),
        sa.Column("admin_only", sa.Boolean, nullable=False),
        sa.Column("pii", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "destination_sends",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("destination_id", sa.Integer, sa.ForeignKey("destinations.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("segment_id", sa.Integer, nullable=False, index=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("rows", sa.Integer, nullable=True),
        sa.Column("calls", sa.Integer, nullable=True),
        sa.Column("retries", sa.Integer, nullable=True),
        sa.Column("rejected", sa.Integer, nullable=True),
        sa.Column("rejected_file", sa.Text, nullable=True),
        sa.Column("columns", sa.JSON, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("state", sa.JSON, nullable=True),
    )
    op.create_table(
        "destination_attachments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("destination_id", sa.Integer, sa.ForeignKey("destinations.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("segment_id", sa.Integer, nullable=False, index=True),
        sa.Column("columns", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("destination_id", "segment_id"),
    )


def downgrade() -> None:
    op.drop_table("destination_attachments")
    op.drop_table("destination_sends")
    op.drop_table("destinations")
