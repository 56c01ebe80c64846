"""Caps on saved segments and their use, with Microsoft's published figures as the default preset.

Configured in ``segmenta.yaml``::

    segments:
      limits: {preset: microsoft, dynamic: 5000}    # a preset, then any cap overridden

``preset: none`` lifts every cap. Exceeding a cap is rejected input (exit 2), nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmenta.errors import Problem, RejectedInput

#: Customer Insights - Journeys and Dynamics 365 Sales quotas, from Microsoft Learn: "Service limits in
#: Customer Insights - Journeys" (segments) and "Configure work assignment segments" (Sales).
PRESETS: dict[str, dict[str, int | None]] = {
    "microsoft": {
        "dynamic": 3_000,  # dynamic segments (expired ones do not count)
        "static": 10_000,  # static snapshots and lists
        "work_assignment": 250,  # active work-assignment segments
        "work_assignment_conditions": 10,  # conditions in one work-assignment definition
        "journey_entry": 15,  # entry segments per journey
    },
    "none": {
        "dynamic": None,
        "static": None,
        "work_assignment": None,
        "work_assignment_conditions": None,
        "journey_entry": None,
    },
}
#: The highest cap that can be set (null lifts a cap altogether).
MAX_CAP = 10_000_000
WHAT = {
    "dynamic": "dynamic segments",
    "static": "static segments",
    "work_assignment": "active work-assignment segments",
    "work_assignment_conditions": "conditions in one work-assignment segment",
    "journey_entry": "entry segments in one journey",
}


def limits_from_config(raw: Mapping[str, Any] | None) -> dict[str, int | None]:
    """The caps from a ``segments.limits`` mapping (preset ``microsoft`` unless told otherwise)."""
    raw = dict(raw or {})
    preset = raw.pop("preset", "microsoft")
    if preset not in PRESETS:
        raise RejectedInput(
            [Problem("segmenta.yaml: segments.limits.preset", f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")]
        )
    caps = dict(PRESETS[preset])
    for name, value in raw.items():
        if name not in caps:
            raise RejectedInput([Problem(f"segmenta.yaml: segments.limits.{name}", f"unknown limit; limits: {', '.join(caps)}")])
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CAP):
            raise RejectedInput(
                [
                    Problem(
                        f"segmenta.yaml: segments.limits.{name}",
                        f"must be a whole number from 0 to {MAX_CAP:,}, or null for no cap, not {value!r}",
                    )
                ]
            )
        caps[name] = value
    return caps


def check(caps: Mapping[str, int | None], name: str, current: int, adding: int = 1) -> None:
    """Reject when ``current + adding`` would exceed the cap ``name``."""
    cap = caps.get(name)
    if cap is not None and current + adding > cap:
        raise RejectedInput(
            [
                Problem(
                    f"limit {name}",
                    f"at most {cap:,} {WHAT[name]} (there are {current:,}); raise segments.limits.{name} in segmenta.yaml",
                )
            ]
        )
