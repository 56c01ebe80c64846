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

    @classmethod
    def from_workspace(cls, config: Mapping[str, Any]) -> SegmentConfig:
        raw = config.get("segments") or {}
        where = "segmenta.yaml: segments"
        if not isinstance(raw, Mapping):
            raise RejectedInput([Problem(where, "must be a mapping")])
        refresh = raw.get("refresh") or {}
        return cls(
            unused_minutes=_positive(refresh.get("unused_minutes", 24 * 60), f"{where}.refresh.unused_minutes"),
            in_use_minutes=_positive(refresh.get("in_use_minutes", 30), f"{where}.refresh.in_use_minutes"),
            in_use_interaction_minutes=_positive(
                refresh.get("in_use_interaction_minutes", 60), f"{where}.refresh.in_use_interaction_minutes"
            ),
            interaction_tables=_tables(raw.get("interaction_tables"), f"{where}.interaction_tables"),
            expiry_days=_positive(raw.get("expiry_days", 30), f"{where}.expiry_days"),
            import_max_rows=_positive(raw.get("import_max_rows", 2_000_000), f"{where}.import_max_rows"),
            limits=limits_from_config(raw.get("limits")),
        )

    def for_segment(self, settings: Mapping[str, Any] | None) -> SegmentConfig:
        """These settings with a segment's own overrides."""
        s = settings or {}
        changes: dict[str, Any] = {}
        if s.get("refresh_minutes") is not None:
            changes["refresh_minutes"] = int(s["refresh_minutes"])
        if s.get("expiry_days") is not None:
            changes["expiry_days"] = int(s["expiry_days"])
        if s.get("interaction_tables") is not None:
            changes["interaction_tables"] = tuple(s["interaction_tables"])
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


def check_segment_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a segment's overrides (``segment configure``)."""
    out: dict[str, Any] = {}
    for k, v in settings.items():
        if k not in SEGMENT_KEYS:
            raise RejectedInput([Problem(k, f"unknown setting; settings: {', '.join(SEGMENT_KEYS)}")])
        if v is None:
            continue
        out[k] = list(_tables(v, k) or ()) if k == "interaction_tables" else _positive(v, k)
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


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RejectedInput([Problem(where, f"must be a whole number >= 1, not {value!r}")])
    return value


def _tables(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RejectedInput([Problem(where, f"must be a list of table names, not {value!r}")])
    return tuple(value)
