"""Saved segments' membership and its history, stored in the data engine beside the data.

One protocol (:class:`segmenta.types.MembershipStore`), two implementations sharing their
change logic (:mod:`segmenta.membership.base`): transactional SQL tables
(:mod:`segmenta.membership.sql`, DuckDB and PostgreSQL) and files behind one commit file
(:mod:`segmenta.membership.files`, Spark). The engine chooses (``Engine.membership_store``).
"""

from __future__ import annotations

from segmenta.engines.base import Engine
from segmenta.membership.base import key_literal, to_arrow, values_query
from segmenta.model.schema import ColumnType
from segmenta.types import ENTERED, EXITED, Changes, MembershipStore, RunRecord

__all__ = [
    "ENTERED",
    "EXITED",
    "Changes",
    "MembershipStore",
    "RunRecord",
    "key_literal",
    "membership_for",
    "to_arrow",
    "values_query",
]


def membership_for(engine: Engine, segment_id: int, key: str, key_type: ColumnType) -> MembershipStore:
    """The membership store of one saved segment on ``engine`` (the engine's own choice)."""
    return engine.membership_store(segment_id, key, key_type)
