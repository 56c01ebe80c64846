"""Refresh cadence, expiry and import settings of saved segments, globally and per segment.

Global settings live under ``segments:`` in the workspace's ``segmenta.yaml``; a segment's
own overrides (``segment configure``) are stored with it. Defaults follow the contract:
a dynamic segment no live journey uses is refreshed every 24 hours; in use by a live
journey every 30 minutes, or 60 when its definition reads interaction-like tables; unused
for 30 days it expires.

    segments:
      refresh: {unused_minutes: 1440, in_use_minutes: 30, in_use_interaction_minutes: 60}
      interaction_tables: [interaction]    # default (null): any related-records condition counts
      expiry_days: 30
      import_max_rows: 2000000
      limits: {preset: microsoft}
      worker: {lease_seconds: 180, interval_seconds: 60}   # a worker's claim, renewed while it refreshes

Every number has bounds (:data:`BOUNDS`); a value outside them is refused (exit 2 / 422)
naming its key and the range, so one bad setting can never make every worker pass fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from segmenta.errors import Problem, RejectedInput
from segmenta.model import definition as d
from segmenta.model.schema import Model
from segmenta.services.limits import limits_from_config

#: Keys a segment may override (``segment configure``).
SEGMENT_KEYS = ("refresh_minutes", "expiry_days", "interaction_tables")

_YEAR_MINUTES = 366 * 24 * 60
#: (lowest, highest) allowed value of every numeric setting, by its last key.
BOUNDS: dict[str, tuple[int, int]] = {
    "unused_minutes": (1, _YEAR_MINUTES),
    "in_use_minutes": (1, _YEAR_MINUTES),
    "in_use_interaction_minutes": (1, _YEAR_MINUTES),
    "refresh_minutes": (1, _YEAR_MINUTES),
    "expiry_days": (1, 3_660),  # ten years
    "import_max_rows": (1, 100_000_000),
    "lease_seconds": (2, 3_600),
    "interval_seconds": (1, 86_400),
}


@dataclass(frozen=True)
class SegmentConfig:
    """Effective settings (global, with one segment's overrides applied by :meth:`for_segment`)."""

    unused_minutes: int = 24 * 60
    in_use_minutes: int = 30
    in_use_interaction_minutes: int = 60
    refresh_minutes: int | None = None  # a segment's fixed cadence, overriding the three above
    interaction_tables: tuple[str, ...] | None = None
    expiry_days: int = 30
    import_max_rows: int = 2_000_000
    limits: dict[str, int | None] = field(default_factory=lambda: limits_from_config(None))
    lease_seconds: int = 180  # a worker's claim on a segment it refreshes, renewed every third of it
    interval_seconds: int = 60  # between worker passes (``segmenta worker``, the scheduler of ``serve``)

    @classmethod
    def from_workspace(cls, config: Mapping[str, Any]) -> SegmentConfig:
        raw = config.get("segments") or {}
        where = "segmenta.yaml: segments"
        if not isinstance(raw, Mapping):
            raise RejectedInput([Problem(where, "must be a mapping")])
        refresh = raw.get("refresh") or {}
        worker = raw.get("worker") or {}
        for key, value in (("refresh", refresh), ("worker", worker)):
            if not isinstance(value, Mapping):
                raise RejectedInput([Problem(f"{where}.{key}", "must be a mapping")])
        return cls(
            unused_minutes=_bounded(refresh.get("unused_minutes", 24 * 60), f"{where}.refresh.unused_minutes"),
            in_use_minutes=_bounded(refresh.get("in_use_minutes", 30), f"{where}.refresh.in_use_minutes"),
            in_use_interaction_minutes=_bounded(
                refresh.get("in_use_interaction_minutes", 60), f"{where}.refresh.in_use_interaction_minutes"
            ),
            interaction_tables=_tables(raw.get("interaction_tables"), f"{where}.interaction_tables"),
            expiry_days=_bounded(raw.get("expiry_days", 30), f"{where}.expiry_days"),
            import_max_rows=_bounded(raw.get("import_max_rows", 2_000_000), f"{where}.import_max_rows"),
            limits=limits_from_config(raw.get("limits")),
            lease_seconds=_bounded(worker.get("lease_seconds", 180), f"{where}.worker.lease_seconds"),
            interval_seconds=_bounded(worker.get("interval_seconds", 60), f"{where}.worker.interval_seconds"),
        )

    def for_segment(self, settings: Mapping[str, Any] | None) -> SegmentConfig:
        """These settings with a segment's own overrides (checked again: a store may hold values from before the bounds)."""
        checked = check_segment_settings(settings or {}, where="segment setting ")
        changes: dict[str, Any] = {k: v for k, v in checked.items() if k != "interaction_tables"}
        if checked.get("interaction_tables") is not None:
            changes["interaction_tables"] = tuple(checked["interaction_tables"])
        return replace(self, **changes)

    def cadence(self, *, in_use: bool, reads_interactions: bool) -> dt.timedelta:
        """How often a live dynamic segment is re-evaluated."""
        if self.refresh_minutes is not None:
            minutes = self.refresh_minutes
        elif not in_use:
            minutes = self.unused_minutes
        else:
            minutes = self.in_use_interaction_minutes if reads_interactions else self.in_use_minutes
        return dt.timedelta(minutes=minutes)


def check_segment_settings(settings: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """Validate a segment's overrides (``segment configure``, ``PATCH .../settings``); None values are left out."""
    out: dict[str, Any] = {}
    for k, v in settings.items():
        if k not in SEGMENT_KEYS:
            raise RejectedInput([Problem(f"{where}{k}", f"unknown setting; settings: {', '.join(SEGMENT_KEYS)}")])
        if v is None:
            continue
        out[k] = list(_tables(v, f"{where}{k}") or ()) if k == "interaction_tables" else _bounded(v, f"{where}{k}")
    return out


def reads_interactions(defn: d.Definition, model: Model, tables: tuple[str, ...] | None) -> bool:
    """Whether the definition reads related records of an interaction-like table (any, when ``tables`` is None)."""
    return any(_reads(g.where, defn.audience, model, tables) for g in defn.groups)


def _reads(node: d.Condition | None, table: str, model: Model, tables: tuple[str, ...] | None) -> bool:
    if node is None:
        return False
    if isinstance(node, (d.All, d.AnyOf)):
        return any(_reads(i, table, model, tables) for i in node.items)
    scope = table
    for step in getattr(node, "path", ()):
        rel = model.many_to_one(scope, step)
        scope = rel.to_table if rel is not None else scope
    if isinstance(node, d.MeasureCondition):
        m = model.measures[node.measure]
        node = d.AggregateCondition(
            related=m.related, fn=m.aggregate.fn, attribute=m.aggregate.attribute, op=node.op, value=node.value
        )
    if isinstance(node, (d.RelatedCondition, d.AggregateCondition)):
        rel = model.one_to_many(scope, node.related)
        target = rel.from_table if rel is not None else node.related
        return tables is None or target in tables or _reads(node.where, target, model, tables)
    return False


def _bounded(value: Any, where: str) -> int:
    """``value`` if it is a whole number within the bounds of its key (the last part of ``where``)."""
    lo, hi = BOUNDS[where.rsplit(".", 1)[-1].rsplit(" ", 1)[-1]]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RejectedInput([Problem(where, f"must be a whole number from {lo:,} to {hi:,}, not {value!r}")])
    return value


def _tables(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RejectedInput([Problem(where, f"must be a list of table names, not {value!r}")])
    return tuple(value)
