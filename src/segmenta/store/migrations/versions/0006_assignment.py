"""Work assignment (contract section 6, issue 12): segments with a priority list per table, each
record's one segment, the routing history, assignment rules and their decisions.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment_segments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("table_name", sa.String(200), nullable=False, index=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("definition", sa.JSON, nullable=True),
        sa.Column("position", sa.Integer, nullable=True),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("no_move", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("activated_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("table_name", "name"),
    )
    op.create_table(
        "assignment_members",
        sa.Column("table_name", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("assignment_segments.id"), nullable=False, index=True),
        sa.Column("assigned_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "assignment_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False, index=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("key", sa.String(400), nullable=False, index=True),
        sa.Column("from_segment_id", sa.Integer, nullable=True),
        sa.Column("to_segment_id", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "assignment_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("segment_id", sa.Integer, sa.ForeignKey("assignment_segments.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("segment_id", "name"),
    )
    op.create_table(
        "assignment_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False, index=True),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("key", sa.String(400), nullable=False, index=True),
        sa.Column("segment_id", sa.Integer, nullable=True),
        sa.Column("rule_id", sa.Integer, nullable=True),
        sa.Column("seller", sa.String(400), nullable=True, index=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("overdue", sa.Boolean, nullable=False),
        sa.Column("current", sa.Boolean, nullable=False, index=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("assignment_decisions")
    op.drop_table("assignment_rules")
    op.drop_table("assignment_history")
    op.drop_table("assignment_members")
    op.drop_table("assignment_segments")
