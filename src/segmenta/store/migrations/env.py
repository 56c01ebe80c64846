"""Alembic environment: always run programmatically by :func:`segmenta.store.database.upgrade`."""

from __future__ import annotations

from alembic import context

import segmenta.store.assignment_models  # noqa: F401  (work assignment, revision 0006)
import segmenta.store.auth_models  # noqa: F401  (users, tokens, sessions, audit_log share the metadata)
from segmenta.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the programmatic path is supported
    raise RuntimeError("segmenta runs its migrations itself: open the store with segmenta.store.database.Store(url)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
