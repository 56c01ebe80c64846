"""Saved segments' membership on Spark: moved to :mod:`segmenta.membership.files`; these
names stay for the modules that import them here."""

from __future__ import annotations

from segmenta.membership.files import COMMIT, SEGMENTS_DIR, Committed
from segmenta.membership.files import FileMembership as SparkMembership

__all__ = ["COMMIT", "SEGMENTS_DIR", "Committed", "SparkMembership"]
