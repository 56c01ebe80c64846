"""Service hardening: token expiry and revocation, login throttling, aggregated audit rows.

- ``api_tokens.expires_at`` / ``revoked_at``: a token past either instant is refused (401).
- ``login_throttle``: failed sign-ins per account and per client address, with the instant
  until which further attempts are refused (429).
- ``audit_log.count``: how many calls one row stands for (anonymous refusals from one client
  address are aggregated per minute instead of filling the log).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime, nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("count", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime, nullable=False, index=True),
        sa.Column("locked_until", sa.DateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("count")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
