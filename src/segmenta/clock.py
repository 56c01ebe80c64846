"""The one clock: ``SEGMENTA_NOW`` (ISO 8601) when set, else the system time, always naive UTC."""

from __future__ import annotations

import datetime as dt
import os

from segmenta.errors import RejectedInput


def parse_instant(text: str, *, what: str = "time") -> dt.datetime:
    """An ISO 8601 date or date-time as naive UTC (a date means its midnight)."""
    from segmenta.model.validate import parse_iso

    parsed = parse_iso(text)
    if parsed is None:
        raise RejectedInput(f"{what}: {text!r} is not an ISO 8601 date or date-time such as 2026-10-27T12:00:00")
    if not isinstance(parsed, dt.datetime):
        parsed = dt.datetime.combine(parsed, dt.time())
    return parsed


def now() -> dt.datetime:
    """The current instant, naive UTC; ``SEGMENTA_NOW`` overrides it."""
    fixed = os.environ.get("SEGMENTA_NOW")
    if fixed:
        return parse_instant(fixed, what="SEGMENTA_NOW")
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
