"""The metadata store as the edges reach it: the CLI and the API open it here, never from
:mod:`segmenta.store` (the layer contract in ``.importlinter``: edges reach the store only
through services)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

# Re-exported: defined apart so that the CLI wires it without importing SQLAlchemy (start-up).
from segmenta.services.saved_segments import with_saved_segments as with_saved_segments
from segmenta.store.auth_models import ROLES as ROLES
from segmenta.store.database import Store as Store
from segmenta.store.database import resolve_url
from segmenta.store.models import Segment

__all__ = ["ROLES", "Store", "open_store", "segment_audiences", "segment_ids", "with_saved_segments"]


def open_store(workspace: Path, config: Mapping[str, Any], url: str | None = None) -> Store:
    """The workspace's metadata store: ``url`` (the ``--store`` flag) if given, else as its settings say."""
    return Store(resolve_url(workspace, dict(config), url))


def segment_ids(store: Store, names: list[str]) -> dict[str, int]:
    """The ids of the saved segments named ``names`` (deleted ones included; missing names left out)."""
    with store.session() as s:
        return {n: i for n, i in s.execute(select(Segment.name, Segment.id).where(Segment.name.in_(names)))}


def segment_audiences(store: Store, ids: set[int]) -> dict[int, str]:
    """The audience table of each saved segment in ``ids`` (missing ids left out)."""
    with store.session() as s:
        rows = s.execute(select(Segment.id, Segment.audience).where(Segment.id.in_(sorted(ids)))).all()
    return {int(i): str(audience) for i, audience in rows}
