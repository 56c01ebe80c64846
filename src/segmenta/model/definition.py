"""Segment definitions as typed, immutable nodes (contract sections 2 and 3).

Build them from JSON/YAML with :func:`segmenta.model.validate.parse_definition`, which
checks every rule of the contract against a model first; the nodes here assume that
checking has been done.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

Scalar = str | int | Decimal | bool | dt.date | dt.datetime
Link = Literal["and_also", "or", "but_not"]
WindowUnit = Literal["hours", "days", "weeks", "months", "years"]
AggregateFn = Literal["sum", "avg", "min", "max", "count_distinct"]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Window(_Node):
    """A relative time window: ``{"days": 90}``."""

    unit: WindowUnit
    n: int


class AttributeCondition(_Node):
    """An attribute of the record at the end of ``path`` compared with ``value``."""

    kind: Literal["attribute"] = "attribute"
    path: tuple[str, ...] = ()
    attribute: str
    op: str
    value: Scalar | tuple[Scalar, ...] | Window | None = None
    case_sensitive: bool = False


class CountSpec(_Node):
    """How a count of related records is compared: ``{"op": "gte", "value": 1}``."""

    op: str = "gte"
    value: int | tuple[int, int] = 1


class RelatedCondition(_Node):
    """Counts related records (one-to-many) that satisfy ``where`` and compares the count."""

    kind: Literal["related"] = "related"
    path: tuple[str, ...] = ()
    related: str
    where: Condition | None = None
    count: CountSpec = CountSpec()


class AggregateCondition(_Node):
    """Compares an aggregate over the related records that satisfy ``where``."""

    kind: Literal["aggregate"] = "aggregate"
    path: tuple[str, ...] = ()
    related: str
    where: Condition | None = None
    fn: AggregateFn
    attribute: str
    op: str
    value: Scalar | tuple[Scalar, ...] | Window | None = None


class MeasureCondition(_Node):
    """Compares a named measure of the model."""

    kind: Literal["measure"] = "measure"
    path: tuple[str, ...] = ()
    measure: str
    op: str
    value: Scalar | tuple[Scalar, ...] | Window | None = None


class InSegment(_Node):
    """Holds for the current members of a published segment."""

    kind: Literal["in_segment"] = "in_segment"
    path: tuple[str, ...] = ()
    segment: str


class All(_Node):
    """Every item holds (an empty ``all`` holds for every record)."""

    kind: Literal["all"] = "all"
    items: tuple[Condition, ...]


class AnyOf(_Node):
    """At least one item holds (an empty ``any`` holds for none)."""

    kind: Literal["any"] = "any"
    items: tuple[Condition, ...]


Condition = AttributeCondition | RelatedCondition | AggregateCondition | MeasureCondition | InSegment | All | AnyOf


class Group(_Node):
    """One group of a definition and how it links to the running result."""

    link: Link | None = None
    where: Condition


class Definition(_Node):
    """A whole segment definition: audience table and groups combined left to right."""

    name: str | None = None
    description: str | None = None
    audience: str
    groups: tuple[Group, ...]

    def referenced_segments(self) -> set[str]:
        """Names used by ``in_segment`` anywhere in the definition."""
        found: set[str] = set()
        for g in self.groups:
            _collect_segments(g.where, found)
        return found


def _collect_segments(node: Condition | None, found: set[str]) -> None:
    if isinstance(node, InSegment):
        found.add(node.segment)
    elif isinstance(node, (All, AnyOf)):
        for item in node.items:
            _collect_segments(item, found)
    elif isinstance(node, (RelatedCondition, AggregateCondition)):
        _collect_segments(node.where, found)


for _cls in (RelatedCondition, AggregateCondition, All, AnyOf, Group, Definition):
    _cls.model_rebuild()
