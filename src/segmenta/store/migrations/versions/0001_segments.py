"""Segments, their definition versions and refresh runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("audience", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("static_type", sa.String(20), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("status_reason", sa.Text, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("live_version", sa.Integer, nullable=True),
        sa.Column("size", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime, nullable=True),
        sa.Column("last_refresh_at", sa.DateTime, nullable=True),
        sa.Column("next_refresh_at", sa.DateTime, nullable=True, index=True),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
    )
    op.create_table(
        "segment_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("segments.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("segment_id", "version"),
    )
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("segments.id"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("size", sa.Integer, nullable=True),
        sa.Column("entered", sa.Integer, nullable=True),
        sa.Column("exited", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("refresh_runs")
    op.drop_table("segment_versions")
    op.drop_table("segments")
