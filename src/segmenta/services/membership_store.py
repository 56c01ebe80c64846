"""Where saved segments' membership lives: moved to :mod:`segmenta.membership` (one protocol,
SQL and file implementations); these names stay for the modules that import them here."""

from __future__ import annotations

from segmenta.membership import ENTERED, EXITED, Changes, MembershipStore, key_literal, membership_for, to_arrow, values_query
from segmenta.membership.sql import SqlMembership as Membership

SCHEMA = "segmenta"

__all__ = [
    "ENTERED",
    "EXITED",
    "SCHEMA",
    "Changes",
    "Membership",
    "MembershipStore",
    "key_literal",
    "membership_for",
    "to_arrow",
    "values_query",
]
