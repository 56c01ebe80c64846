"""What a segment reads: the (table, column) pairs and stored segments its answer depends on.

A segment's membership can change only when something it reads changes, so these
reads decide which segments a record change touches (``touches``) and, with the
routes they were read along, which audience records (``segmenta.compiler.affected``).

Example::

    reads = segment_reads(definition, model)
    reads.columns          # frozenset({("contact", "contactid"), ("contact", "tier"), ("order", "contactid"), ...})
    reads.segments         # names used by in_segment, to chain through stored segments
    reads.touches("order", {"amount"})

Everything here is pure: no I/O, no engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from segmenta.model import definition as d
from segmenta.model.operators import WINDOW_VALUE
from segmenta.model.schema import Model, Relationship
from segmenta.model.validate import measure_filter

Direction = Literal["up", "down"]


@dataclass(frozen=True, order=True)
class Step:
    """One relationship walked: ``up`` many-to-one (from ``rel.from_table`` to ``rel.to_table``), ``down`` the reverse."""

    rel: int  # index into model.relationships
    direction: Direction


@dataclass(frozen=True)
class Scope:
    """The records reached from the audience by ``route`` (all of them of ``table``) and what is read on them.

    ``columns`` are the columns of ``table`` read on those records, including the
    foreign keys that lead in (``down`` into it) and out (``up`` from it) of them;
    ``segments`` the stored segments whose membership of those records is read.
    """

    route: tuple[Step, ...]
    table: str
    columns: frozenset[str]
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Window:
    """A relative-window condition (its answer moves with the clock) on the records of ``table`` reached by ``route``."""

    route: tuple[Step, ...]
    table: str
    condition: d.AttributeCondition


@dataclass(frozen=True)
class Reads:
    """Everything one definition reads, by scope; ``columns`` and ``segments`` are the flat views.

    ``windows``: the conditions whose answer changes when the clock moves, with no record changing.
    """

    audience: str
    scopes: tuple[Scope, ...]
    windows: tuple[Window, ...] = ()
    columns: frozenset[tuple[str, str]] = field(init=False)
    segments: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", frozenset((s.table, c) for s in self.scopes for c in s.columns))
        object.__setattr__(self, "segments", frozenset(n for s in self.scopes for n in s.segments))

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.columns)

    def touches(self, table: str, columns: Iterable[str]) -> bool:
        """Whether changing ``columns`` of some ``table`` records can change this segment's members."""
        changed = set(columns)
        return any(s.table == table and not s.columns.isdisjoint(changed) for s in self.scopes)

    def scopes_on(self, table: str, columns: Iterable[str] | None = None) -> tuple[Scope, ...]:
        """The scopes reading ``table`` (those reading one of ``columns``, when given)."""
        wanted = None if columns is None else set(columns)
        return tuple(s for s in self.scopes if s.table == table and (wanted is None or not s.columns.isdisjoint(wanted)))


def segment_reads(definition: d.Definition, model: Model) -> Reads:
    """The reads of a parsed (validated) ``definition`` over ``model``."""
    walker = _Walker(model)
    root: tuple[Step, ...] = ()
    table = model.table(definition.audience)
    walker.read(root, definition.audience, table.key)  # membership is by key: a new or deleted record changes it
    if table.active is not None:
        walker.read(root, definition.audience, table.active.attribute)
    for group in definition.groups:
        walker.condition(group.where, root, definition.audience)
    scopes = tuple(
        Scope(route=route, table=tbl, columns=frozenset(cols), segments=frozenset(walker.segments.get(route, ())))
        for route, (tbl, cols) in sorted(walker.scopes.items())
    )
    return Reads(audience=definition.audience, scopes=scopes, windows=tuple(walker.windows))


class _Walker:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.scopes: dict[tuple[Step, ...], tuple[str, set[str]]] = {}
        self.segments: dict[tuple[Step, ...], set[str]] = {}
        self.windows: list[Window] = []

    def read(self, route: tuple[Step, ...], table: str, column: str) -> None:
        self.scopes.setdefault(route, (table, set()))[1].add(column)

    def step(self, route: tuple[Step, ...], table: str, rel: Relationship, direction: Direction) -> tuple[tuple[Step, ...], str]:
        """Walk ``rel``; records the key and foreign key on both ends and returns the new (route, table)."""
        index = self.model.relationships.index(rel)
        new = (*route, Step(index, direction))
        if direction == "up":  # table.fk -> target.key
            self.read(route, table, rel.from_column)
            target = rel.to_table
            self.read(new, target, rel.to_column)
        else:  # related.fk -> table.key
            self.read(route, table, rel.to_column)
            target = rel.from_table
            self.read(new, target, rel.from_column)
        return new, target

    def path(self, route: tuple[Step, ...], table: str, path: tuple[str, ...]) -> tuple[tuple[Step, ...], str]:
        for name in path:
            rel = self.model.many_to_one(table, name)
            assert rel is not None, f"no many-to-one {name!r} from {table!r}"  # validation rejects this
            route, table = self.step(route, table, rel, "up")
        return route, table

    def condition(self, node: d.Condition | None, route: tuple[Step, ...], table: str) -> None:
        if node is None:
            return
        if isinstance(node, (d.All, d.AnyOf)):
            for item in node.items:
                self.condition(item, route, table)
            return
        route, table = self.path(route, table, node.path)
        if isinstance(node, d.AttributeCondition):
            self.read(route, table, node.attribute)
            if node.op in WINDOW_VALUE:
                self.windows.append(Window(route, table, node))
        elif isinstance(node, d.InSegment):
            self.read(route, table, self.model.table(table).key)
            self.segments.setdefault(route, set()).add(node.segment)
        elif isinstance(node, d.RelatedCondition):
            self.related(route, table, node.related, node.where, None)
        elif isinstance(node, d.AggregateCondition):
            self.related(route, table, node.related, node.where, node.attribute, window=(node.op, node.value))
        elif isinstance(node, d.MeasureCondition):
            m = self.model.measures[node.measure]
            self.related(
                route,
                table,
                m.related,
                measure_filter(self.model, node.measure),
                m.aggregate.attribute,
                window=(node.op, node.value),
            )

    def related(
        self,
        route: tuple[Step, ...],
        table: str,
        related: str,
        where: d.Condition | None,
        attribute: str | None,
        *,
        window: tuple[str, Any] | None = None,
    ) -> None:
        rel = self.model.one_to_many(table, related)
        assert rel is not None, f"no one-to-many {related!r} from {table!r}"  # validation rejects this
        inner, target = self.step(route, table, rel, "down")
        if attribute is not None:
            self.read(inner, target, attribute)
            if window is not None and window[0] in WINDOW_VALUE:
                # an aggregate (a latest date) in a window: it crosses an edge only when some row's value does
                cond = d.AttributeCondition(attribute=attribute, op=window[0], value=window[1])
                self.windows.append(Window(inner, target, cond))
        self.condition(where, inner, target)
