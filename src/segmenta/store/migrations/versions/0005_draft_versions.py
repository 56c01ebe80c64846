"""Draft versions: an edit of a published segment waits in ``draft_version`` until publish.

``current_version`` stays the version in force (what refreshes evaluate); ``draft_version``
is a newer saved version not yet published, or null.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("draft_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("draft_version")
