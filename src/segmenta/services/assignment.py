"""Work-assignment segments (contract section 6, issue 12): exclusive, prioritised segments of one table.

Each table has one priority list of work-assignment segments (1 is the highest) ending with
a built-in ``default``. An active record is in exactly one of them: the first ACTIVE segment
in priority order whose definition it matches, else ``default``; an inactive (or deleted)
record is in none. Routing happens:

* when a record is created, and again when it, or a related record that a condition of an
  active segment reads, changes (``segmenta records``: :func:`on_records_changed`), unless
  its current segment keeps it (``--no-move``; the default always lets records move);
* for every record its current segment lets move, when a segment is activated or
  deactivated (a deactivated segment keeps nothing: its records are routed again too);
* never by a priority change alone: the new order applies to records routed afterwards.

Definitions are evaluated by the compiler (``compile_definition``, restricted to the keys
being routed), never by hand. Which records are active comes from the model's ``active``
rule through the same compiler (an empty definition of the table selects its active records).

Records that reached a table without ``segmenta records`` (``load`` replaces a table) are
routed by the next assignment command that reads that table (:meth:`Assignments.catch_up`),
so ``list`` and ``show`` always answer for the table as it is.

Every change of a record's segment is one row of ``assignment_history`` (from, to, when, why).

Example::

    with Segments.open("crm") as segs:
        wa = Assignments(segs)
        wa.create("uk-leads.json", name="UK leads")
        wa.activate("UK leads")
        wa.show("contact", "7")        # {"segment": "UK leads", ...}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from segmenta import clock
from segmenta.compiler.compile import compile_definition
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.model import definition as d
from segmenta.model.schema import ColumnType, hint
from segmenta.model.validate import parse_definition
from segmenta.services import limits
from segmenta.store.assignment_models import AssignmentHistory, AssignmentMember, AssignmentSegment

if TYPE_CHECKING:
    from segmenta.services.records import Applied
    from segmenta.services.segments import Segments

DEFAULT = "default"
DRAFT, ACTIVE, INACTIVE = "draft", "active", "inactive"
#: Keys per IN (...) list of a store query.
CHUNK = 500


def count_conditions(node: d.Condition | None) -> int:
    """Conditions in ``node``, wherever nested: attribute, related, aggregate, measure and segment conditions.

    ``all``/``any`` trees only group them and do not count; a related block's own
    ``where`` counts inside it (contract section 6).
    """
    if node is None:
        return 0
    if isinstance(node, (d.All, d.AnyOf)):
        return sum(count_conditions(i) for i in node.items)
    if isinstance(node, (d.RelatedCondition, d.AggregateCondition)):
        return 1 + count_conditions(node.where)
    return 1


def definition_conditions(defn: d.Definition) -> int:
    return sum(count_conditions(g.where) for g in defn.groups)


@dataclass(frozen=True)
class SegmentRow:
    """A work-assignment segment as routing reads it (detached from the session)."""

    id: int
    name: str
    table: str
    position: int | None
    status: str
    no_move: bool
    is_default: bool
    definition: dict[str, Any] | None

    @property
    def lets_move(self) -> bool:
        """Whether a record in this segment may be routed elsewhere: always, unless an active ``--no-move`` segment keeps it."""
        return self.is_default or not self.no_move or self.status != ACTIVE


def _row(seg: AssignmentSegment) -> SegmentRow:
    return SegmentRow(seg.id, seg.name, seg.table_name, seg.position, seg.status, seg.no_move, seg.is_default, seg.definition)


@dataclass
class RouteReport:
    """What one routing pass changed: records that entered a segment (or moved) and those that left every segment."""

    routed: int = 0  # records whose segment was decided (kept or changed)
    moved: int = 0  # records whose segment changed (new records included)
    removed: int = 0  # records that left every segment (inactive or deleted)
    kept: int = 0  # records a --no-move segment kept

    #: key -> the segment id it moved to (None: out of every segment); not printed
    changes: dict[str, int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        return {"routed": self.routed, "moved": self.moved, "removed": self.removed, "kept": self.kept}


class Assignments:
    """Use cases of work assignment over an open :class:`Segments` (its workspace and store)."""

    def __init__(self, segs: Segments) -> None:
        self.segs = segs
        self.ws = segs.ws
        self.store = segs.store

    # -- reading the store ---------------------------------------------------------------------

    def _table(self, table: str) -> str:
        if table not in self.ws.model.tables:
            raise NotFound(
                [Problem(table, f"unknown table{hint(table, self.ws.model.tables)}; tables: {', '.join(self.ws.model.tables)}")]
            )
        return table

    def _ensure_default(self, s: Session, table: str) -> AssignmentSegment:
        seg = s.scalar(select(AssignmentSegment).where(AssignmentSegment.table_name == table, AssignmentSegment.is_default))
        if seg is None:
            now = clock.now()
            seg = AssignmentSegment(
                name=DEFAULT,
                table_name=table,
                description="records no other active segment takes",
                definition=None,
                position=None,
                is_default=True,
                no_move=False,
                status=ACTIVE,
                created_at=now,
                updated_at=now,
                activated_at=now,
            )
            s.add(seg)
            s.flush()
        return seg

    def _ordered(self, s: Session, table: str) -> list[AssignmentSegment]:
        """The table's segments in priority order, ``default`` last."""
        default = self._ensure_default(s, table)
        rest = s.scalars(
            select(AssignmentSegment)
            .where(AssignmentSegment.table_name == table, AssignmentSegment.is_default.is_(False))
            .order_by(AssignmentSegment.position, AssignmentSegment.id)
        ).all()
        return [*rest, default]

    def _get(self, s: Session, name: str) -> AssignmentSegment:
        if name == DEFAULT:
            raise RejectedInput([Problem(name, "is the built-in segment every table has; it is always active and always last")])
        seg = s.scalar(select(AssignmentSegment).where(AssignmentSegment.name == name, AssignmentSegment.is_default.is_(False)))
        if seg is None:
            names = s.scalars(select(AssignmentSegment.name).where(AssignmentSegment.is_default.is_(False))).all()
            raise NotFound([Problem(name, f"no work-assignment segment has this name{hint(name, names)}")])
        return seg

    def _lock(self, s: Session, table: str) -> None:
        """PostgreSQL store: one routing pass of a table at a time (a transaction's advisory lock)."""
        if self.store.postgres:
            number = int.from_bytes(hashlib.sha256(f"segmenta assignment {table}".encode()).digest()[:8], "big", signed=True)
            s.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})

    # -- keys -----------------------------------------------------------------------------------

    def parse_key(self, table: str, raw: Any) -> Any:
        """A key given as text (CLI, URL) as the table's key type; RejectedInput when it cannot be one."""
        t = self.ws.model.table(self._table(table))
        kind = t.column(t.key).type
        if kind == ColumnType.INTEGER:
            text_key = str(raw).strip()
            if not re.fullmatch(r"-?[0-9]{1,19}", text_key) or not -(2**63) <= int(text_key) < 2**63:
                raise RejectedInput([Problem("KEY", f"{str(raw)[:40]!r}: {table}.{t.key} is an integer key (64-bit)")])
            return int(text_key)
        return str(raw)

    def _typed_key(self, table: str) -> Any:
        t = self.ws.model.table(table)
        return int if t.column(t.key).type == ColumnType.INTEGER else str

    # -- evaluation (the compiler, never by hand) ----------------------------------------------

    def _definition(self, seg: SegmentRow) -> d.Definition:
        assert seg.definition is not None
        return parse_definition(seg.definition, self.ws.model)

    def _everyone(self, table: str) -> d.Definition:
        """The table's active records (its ``active`` rule; every record without one), as a definition."""
        return d.Definition(audience=table, groups=(d.Group(where=d.All(items=())),))

    def _members(self, defn: d.Definition, keys: list[Any] | None, *, as_of: dt.datetime) -> set[Any]:
        """The records of ``defn`` among ``keys`` (None: all of them)."""
        if keys is None:
            query = compile_definition(defn, self.ws.model, as_of=as_of, segments=self.ws.segment_source)
            return set(self.ws.engine.column(query))
        if not keys:
            return set()
        from segmenta.services.records import evaluate_for_keys

        out: set[Any] = set()
        for start in range(0, len(keys), 50_000):
            out.update(evaluate_for_keys(self.ws, defn, keys[start : start + 50_000], as_of=as_of))
        return out

    @contextmanager
    def _restricted(self, table: str, keys: list[Any] | None) -> Iterator[Callable[[d.Definition], set[Any]]]:
        """An evaluator of definitions of ``table`` among ``keys`` (None: all records), staging the keys ONCE.

        Routing evaluates up to every active segment over the same keys; staging them for each
        (``evaluate_for_keys``) would cost one table write per segment.
        """
        as_of = clock.now()
        if keys is None:
            yield lambda defn: self._members(defn, None, as_of=as_of)
            return
        if not keys:
            yield lambda defn: set()
            return
        import uuid

        import pyarrow as pa
        from sqlglot import exp

        from segmenta.services.loading import arrow_schema

        t = self.ws.model.table(table)
        key_type = arrow_schema(t).field(t.key).type
        name = f"__segmenta_assignment_keys_{uuid.uuid4().hex[:16]}"
        staged = self.ws.engine.stage(name, pa.table({"k": pa.array(keys, key_type)}))
        restrict = exp.select(exp.column("k", quoted=True)).from_(staged)

        def members(defn: d.Definition) -> set[Any]:
            query = compile_definition(
                defn, self.ws.model, as_of=as_of, segments=self.ws.segment_source, restrict_to=restrict.copy()
            )
            return set(self.ws.engine.column(query))

        try:
            yield members
        finally:
            self.ws.engine.drop_staged(name)

    def _current(self, s: Session, table: str, keys: list[str] | None) -> dict[str, int]:
        """Each record's segment id now (``keys`` None: every record of the table that has one)."""
        q = select(AssignmentMember.key, AssignmentMember.segment_id).where(AssignmentMember.table_name == table)
        if keys is None:
            return dict(s.execute(q).all())
        out: dict[str, int] = {}
        for start in range(0, len(keys), CHUNK):
            out.update(s.execute(q.where(AssignmentMember.key.in_(keys[start : start + CHUNK]))).all())
        return out

    def decide(
        self, table: str, order: list[SegmentRow], current: dict[str, int], keys: list[Any] | None
    ) -> tuple[dict[str, int | None], RouteReport]:
        """The segment each record should be in now (None: none), for ``keys`` (None: every active or assigned record).

        ``order`` is the table's list in priority order, ``default`` last; ``current`` each
        record's segment now. Changes nothing.
        """
        with self._restricted(table, keys) as members:
            return self._decide(table, order, current, keys, members)

    def _decide(
        self,
        table: str,
        order: list[SegmentRow],
        current: dict[str, int],
        keys: list[Any] | None,
        members: Callable[[d.Definition], set[Any]],
    ) -> tuple[dict[str, int | None], RouteReport]:
        by_id = {r.id: r for r in order}
        default = order[-1]
        active = members(self._everyone(table))
        report = RouteReport()
        target: dict[str, int | None] = {}
        movable: list[Any] = []
        for k in active:
            cur = current.get(str(k))
            if cur is not None and cur in by_id and not by_id[cur].lets_move:
                target[str(k)] = cur
                report.kept += 1
            else:
                movable.append(k)
        remaining = set(movable)
        for seg in order[:-1]:
            if not remaining:
                break
            if seg.status != ACTIVE:
                continue
            got = members(self._definition(seg)) & remaining
            for k in got:
                target[str(k)] = seg.id
            remaining -= got
        for k in remaining:
            target[str(k)] = default.id
        active_text = {str(k) for k in active}
        wanted = None if keys is None else {str(k) for k in keys}
        for t in current:
            if t not in active_text and (wanted is None or t in wanted):
                target[t] = None
        report.routed = len(active)
        return target, report

    def _write(
        self, s: Session, table: str, target: dict[str, int | None], current: dict[str, int], reason: str, detail: str = ""
    ) -> RouteReport:
        """Store ``target`` (only what changed) and one history row per change."""
        now = clock.now()
        report = RouteReport()
        inserts, updates, deletes, history = [], [], [], []
        for k, to in target.items():
            before = current.get(k)
            if before == to:
                continue
            report.changes[k] = to
            if to is None:
                deletes.append(k)
                report.removed += 1
            elif before is None:
                inserts.append({"table_name": table, "key": k, "segment_id": to, "assigned_at": now})
                report.moved += 1
            else:
                updates.append({"k": k, "segment_id": to})
                report.moved += 1
            why = reason if to is not None else ("deleted" if reason == "deleted" else "inactive")
            if to is not None and before is None and reason in ("updated", "related"):
                why = "created"
            history.append(
                {
                    "at": now,
                    "table_name": table,
                    "key": k,
                    "from_segment_id": before,
                    "to_segment_id": to,
                    "reason": why,
                    "detail": detail,
                }
            )
        if inserts:
            s.execute(insert(AssignmentMember), inserts)
        for u in updates:  # executemany through the ORM's bulk UPDATE by primary key
            s.execute(
                update(AssignmentMember)
                .where(AssignmentMember.table_name == table, AssignmentMember.key == u["k"])
                .values(segment_id=u["segment_id"], assigned_at=now)
            )
        for start in range(0, len(deletes), CHUNK):
            s.execute(
                delete(AssignmentMember).where(
                    AssignmentMember.table_name == table, AssignmentMember.key.in_(deletes[start : start + CHUNK])
                )
            )
        if history:
            s.execute(insert(AssignmentHistory), history)
        return report

    def route(self, table: str, keys: list[Any] | None, *, reason: str, detail: str = "") -> RouteReport:
        """Route ``keys`` of ``table`` (None: every active or assigned record) with the order in force; stores what changed."""
        with self.store.session() as s:
            self._lock(s, table)
            order = [_row(r) for r in self._ordered(s, table)]
            current = self._current(s, table, None if keys is None else [str(k) for k in keys])
            target, decided = self.decide(table, order, current, keys)
            written = self._write(s, table, target, current, reason, detail)
            self._sellers_for(s, table, written.changes)  # in the same transaction: no routed record without its decision
            _test_hang()
        written.routed, written.kept = decided.routed, decided.kept
        return written

    def _sellers_for(self, s: Session, table: str, changes: dict[str, int | None]) -> None:
        """Records that moved: a seller by their new segment's rules (assignment_rules), none when they left."""
        if not changes:
            return
        from segmenta.services.assignment_rules import Rules
        from segmenta.store.assignment_models import AssignmentRule

        if s.scalar(select(AssignmentRule.id).limit(1)) is None:  # no rules anywhere: nothing to decide
            return
        typed = self._typed_key(table)
        rules = Rules(self)
        rules.release(table, [_as(typed, k) for k, to in changes.items() if to is None], session=s)
        rules.assign(table, [_as(typed, k) for k, to in changes.items() if to is not None], session=s)

    def catch_up(self, table: str) -> RouteReport:
        """Route the active records that have no segment yet and take out the assigned ones no longer active or there.

        Records loaded with ``load`` (which replaces a table) never went through ``records``;
        this brings them in, without moving anyone already routed.
        """
        active = {str(k): k for k in self._members(self._everyone(table), None, as_of=clock.now())}
        with self.store.session() as s:
            assigned = set(s.scalars(select(AssignmentMember.key).where(AssignmentMember.table_name == table)).all())
        stale = [active[k] for k in active.keys() - assigned]
        gone = assigned - active.keys()
        typed = self._typed_key(table)
        keys: list[Any] = stale
        for k in gone:
            try:
                keys.append(typed(k))
            except ValueError:  # not a key of the table's type any more: it can only leave
                keys.append(k)
        if not keys:
            return RouteReport()
        return self.route(table, keys, reason="catch_up")

    # -- the contract's commands -------------------------------------------------------------

    def create(
        self,
        source: Any,
        *,
        name: str | None = None,
        priority: int | None = None,
        no_move: bool = False,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A draft work-assignment segment for the definition's audience table.

        ``priority`` (1 is the highest, up to one past the last segment) inserts it there and
        shifts the others down; without it the segment takes the priority of the last one
        created (placed right after it: equal priorities go by age), or 1 for the table's first.
        """
        from segmenta.services.segments import clean_name
        from segmenta.workspace import read_definition

        raw = dict(read_definition(source, limits=self.ws.limits))
        defn = parse_definition(raw, self.ws.model, limits=self.ws.limits)
        self._check_conditions(defn)
        if not (name or defn.name or "").strip():
            raise RejectedInput([Problem("--name", 'the segment needs a name: give --name or a "name" in the definition')])
        chosen = clean_name(name or defn.name, where="--name" if name else "/name")
        if chosen.lower() == DEFAULT:
            raise RejectedInput([Problem("--name", f"{chosen!r} is the built-in segment every table has; choose another name")])
        table = defn.audience
        now = clock.now()
        with self.store.session() as s:
            self._lock(s, table)
            if s.scalar(select(AssignmentSegment.id).where(AssignmentSegment.name == chosen)) is not None:
                raise Conflict([Problem(chosen, "a work-assignment segment with this name already exists")])
            order = self._ordered(s, table)[:-1]
            if priority is None:
                last = max(order, key=lambda r: (r.created_at, r.id), default=None)
                position = 1 if last is None or last.position is None else last.position + 1
            else:
                if isinstance(priority, bool) or not 1 <= priority <= len(order) + 1:
                    raise RejectedInput(
                        [
                            Problem(
                                "--priority", f"must be from 1 (highest) to {len(order) + 1} for table {table!r}, not {priority}"
                            )
                        ]
                    )
                position = priority
            for r in order:
                if r.position is not None and r.position >= position:
                    r.position += 1
            seg = AssignmentSegment(
                name=chosen,
                table_name=table,
                description=description if description is not None else (defn.description or ""),
                definition=raw,
                position=position,
                is_default=False,
                no_move=no_move,
                status=DRAFT,
                created_at=now,
                updated_at=now,
            )
            s.add(seg)
            s.flush()
            self._renumber(s, table)
        return self.describe(chosen)

    def _check_conditions(self, defn: d.Definition) -> None:
        cap = self.segs.config.limits.get("work_assignment_conditions")
        n = definition_conditions(defn)
        if cap is not None and n > cap:
            raise RejectedInput(
                [
                    Problem(
                        "/groups",
                        f"a work-assignment segment has at most {cap:,} conditions (attribute, related, aggregate, "
                        f"measure or segment conditions, counted wherever nested); this one has {n:,} "
                        "(setting segments.limits.work_assignment_conditions in segmenta.yaml)",
                    )
                ]
            )

    def _renumber(self, s: Session, table: str) -> None:
        """Positions 1..n in priority order (no gaps, no ties)."""
        for i, r in enumerate(self._ordered(s, table)[:-1], start=1):
            r.position = i

    def activate(self, name: str) -> dict[str, Any]:
        """Make ``name`` active (at most ``segments.limits.work_assignment`` active at once) and route its table again."""
        with self.store.session() as s:
            seg = self._get(s, name)
            table = seg.table_name
            if seg.status != ACTIVE:
                self._check_conditions(parse_definition(seg.definition, self.ws.model))
                used = s.scalar(
                    select(func.count())
                    .select_from(AssignmentSegment)
                    .where(AssignmentSegment.status == ACTIVE, AssignmentSegment.is_default.is_(False))
                )
                limits.check(self.segs.config.limits, "work_assignment", int(used or 0))
                seg.status, seg.updated_at, seg.activated_at = ACTIVE, clock.now(), clock.now()
        report = self.route(table, None, reason="activate", detail=name)
        return {**self.describe(name), "routing": report.to_dict()}

    def deactivate(self, name: str) -> dict[str, Any]:
        """Make ``name`` inactive and route its table again: its records go to the next segment that takes them."""
        with self.store.session() as s:
            seg = self._get(s, name)
            table = seg.table_name
            if seg.status == DRAFT:
                raise Conflict([Problem(name, "is a draft; only an active segment can be deactivated")])
            if seg.status == ACTIVE:
                seg.status, seg.updated_at = INACTIVE, clock.now()
        report = self.route(table, None, reason="deactivate", detail=name)
        return {**self.describe(name), "routing": report.to_dict()}

    def priority(self, name: str, position: int) -> dict[str, Any]:
        """Move ``name`` to ``position`` (1 is the highest); the others shift. Routes nothing."""
        with self.store.session() as s:
            seg = self._get(s, name)
            self._lock(s, seg.table_name)
            order = self._ordered(s, seg.table_name)[:-1]
            if isinstance(position, bool) or not 1 <= position <= len(order):
                raise RejectedInput(
                    [
                        Problem(
                            "N",
                            f"a priority of table {seg.table_name!r} is from 1 (highest) to {len(order)}, not {position}; "
                            "'default' always comes last",
                        )
                    ]
                )
            rest = [r for r in order if r.id != seg.id]
            rest.insert(position - 1, seg)
            for i, r in enumerate(rest, start=1):
                r.position = i
            seg.updated_at = clock.now()
        return self.describe(name)

    def rerun(self, table: str) -> dict[str, Any]:
        """Apply the order in force to every record its segment lets move ("re-run now"); what moved."""
        self._table(table)
        report = self.route(table, None, reason="rerun")
        return report.to_dict()

    def simulate(self, name: str) -> dict[str, Any]:
        """The keys activating ``name`` now would route to it, ascending, and their count; changes nothing."""
        with self.store.session() as s:
            seg = self._get(s, name)
            table = seg.table_name
            order = [_row(r) for r in self._ordered_readonly(s, table)]
            current = self._current(s, table, None)
        order = [
            SegmentRow(r.id, r.name, r.table, r.position, ACTIVE, r.no_move, r.is_default, r.definition) if r.name == name else r
            for r in order
        ]
        target, _ = self.decide(table, order, current, None)
        typed = self._typed_key(table)
        keys = sorted(typed(k) for k, to in target.items() if to == seg.id)
        return {"keys": keys, "count": len(keys)}

    def _ordered_readonly(self, s: Session, table: str) -> list[AssignmentSegment]:
        """Like :meth:`_ordered`, without creating the default (a stand-in row that is never stored)."""
        default = s.scalar(select(AssignmentSegment).where(AssignmentSegment.table_name == table, AssignmentSegment.is_default))
        rest = s.scalars(
            select(AssignmentSegment)
            .where(AssignmentSegment.table_name == table, AssignmentSegment.is_default.is_(False))
            .order_by(AssignmentSegment.position, AssignmentSegment.id)
        ).all()
        if default is None:
            default = AssignmentSegment(
                id=-1, name=DEFAULT, table_name=table, position=None, status=ACTIVE, no_move=False, is_default=True
            )
        return [*rest, default]

    def show(self, table: str, raw_key: Any) -> dict[str, Any]:
        """The segment one record is in now (None when inactive or absent), with since when and why."""
        key = self.parse_key(table, raw_key)
        active = key in self._members(self._everyone(table), [key], as_of=clock.now())
        exists = active or bool(self._exists(table, key))
        with self.store.session() as s:
            assigned = s.get(AssignmentMember, (table, str(key)))
            stale = active != (assigned is not None)
        if stale:
            self.route(table, [key], reason="catch_up")
        with self.store.session() as s:
            assigned = s.get(AssignmentMember, (table, str(key)))
            seg = s.get(AssignmentSegment, assigned.segment_id) if assigned is not None else None
            last = s.scalar(
                select(AssignmentHistory)
                .where(AssignmentHistory.table_name == table, AssignmentHistory.key == str(key))
                .order_by(AssignmentHistory.id.desc())
                .limit(1)
            )
            return {
                "segment": seg.name if seg is not None else None,
                "table": table,
                "key": key,
                "exists": exists,
                "active": active,
                "since": assigned.assigned_at.isoformat() if assigned is not None else None,
                "reason": last.reason if last is not None else None,
                "assignment": self._seller_of(table, key),
            }

    def _seller_of(self, table: str, key: Any) -> dict[str, Any]:
        from segmenta.services.assignment_rules import Rules

        return Rules(self).of_record(table, key)

    def _exists(self, table: str, key: Any) -> bool:
        from sqlglot import exp

        t = self.ws.model.table(table)
        q = (
            exp.select(exp.column(t.key, quoted=True))
            .from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
            .where(exp.EQ(this=exp.column(t.key, quoted=True), expression=exp.convert(key)))
            .limit(1)
        )
        return bool(self.ws.engine.column(q))

    def list_segments(self, table: str) -> list[dict[str, Any]]:
        """The table's segments in position order, ``default`` last: name, priority, status, size."""
        self._table(table)
        self.catch_up(table)
        with self.store.session() as s:
            order = self._ordered(s, table)
            sizes = dict(
                s.execute(
                    select(AssignmentMember.segment_id, func.count())
                    .where(AssignmentMember.table_name == table)
                    .group_by(AssignmentMember.segment_id)
                ).all()
            )
            return [self._info(r, len(order), sizes.get(r.id, 0)) for r in order]

    def describe(self, name: str) -> dict[str, Any]:
        """One segment's row as ``list`` prints it, plus its table, description and definition."""
        with self.store.session() as s:
            seg = self._get(s, name)
            n = len(self._ordered(s, seg.table_name))
            size = s.scalar(select(func.count()).select_from(AssignmentMember).where(AssignmentMember.segment_id == seg.id))
            return {
                **self._info(seg, n, int(size or 0)),
                "table": seg.table_name,
                "description": seg.description,
                "definition": seg.definition,
            }

    def _info(self, seg: AssignmentSegment, count: int, size: int) -> dict[str, Any]:
        return {
            "name": seg.name,
            "priority": count if seg.is_default else seg.position,
            "status": seg.status,
            "size": size,
            "no_move": seg.no_move,
        }

    def history(self, table: str, raw_key: Any | None = None, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Routing decisions that changed a segment, newest first (of one record when ``raw_key`` is given)."""
        self._table(table)
        with self.store.session() as s:
            names = dict(s.execute(select(AssignmentSegment.id, AssignmentSegment.name)).all())
            q = select(AssignmentHistory).where(AssignmentHistory.table_name == table)
            if raw_key is not None:
                q = q.where(AssignmentHistory.key == str(self.parse_key(table, raw_key)))
            rows = s.scalars(q.order_by(AssignmentHistory.id.desc()).limit(limit)).all()
            typed = self._typed_key(table)
            return [
                {
                    "at": h.at.isoformat(),
                    "key": _as(typed, h.key),
                    "from": names.get(h.from_segment_id) if h.from_segment_id is not None else None,
                    "to": names.get(h.to_segment_id) if h.to_segment_id is not None else None,
                    "reason": h.reason,
                    "detail": h.detail,
                }
                for h in rows
            ]

    def tables(self) -> list[str]:
        """Tables with at least one work-assignment segment of their own (the default does not count)."""
        with self.store.session() as s:
            return sorted(
                set(s.scalars(select(AssignmentSegment.table_name).where(AssignmentSegment.is_default.is_(False))).all())
            )


#: Test-only hook: a path; a routing pass creates it inside its store transaction, then hangs (to be killed).
HANG_ENV = "SEGMENTA_TEST_HANG_IN_ROUTING"


def _test_hang() -> None:
    import os

    marker = os.environ.get(HANG_ENV)
    if marker:
        import time
        from pathlib import Path

        Path(marker).touch()
        time.sleep(300)


def _as(typed: Any, raw: str) -> Any:
    try:
        return typed(raw)
    except ValueError:
        return raw


# -- record changes (contract 5.2 -> section 6) ----------------------------------------------------


def on_records_changed(segs: Segments, table: str, applied: Applied) -> dict[str, Any]:
    """Route the records a ``records upsert|delete`` of ``table`` created, changed or can have changed.

    For each table with work-assignment segments: a change of that table itself routes the
    changed records (created ones enter, updated ones are routed again unless a ``--no-move``
    segment keeps them, deleted or deactivated ones leave); a change of another table routes
    the records that reach a changed row along what an ACTIVE segment's definition reads
    (:mod:`segmenta.compiler.reads`, :func:`segmenta.compiler.affected.affected_keys`). A
    saved segment refreshed by the change that an active definition reads through
    ``in_segment`` routes that table's records again (all those their segment lets move).
    Returns what was routed, by table.
    """
    if applied.versions is None or (applied.changed is not None and not applied.changed):
        return {}
    wa = Assignments(segs)
    tables = wa.tables()
    if not tables:
        return {}
    from segmenta.services.assignment_rules import Rules

    rules = Rules(wa)
    if table in rules.seller_tables():  # capacity or availability may have changed: the queue is tried again
        for audience in tables:
            rules.retry(audience)
    deleting = applied.result.deleted > 0 or applied.result.unknown > 0
    out: dict[str, Any] = {}
    model = segs.ws.model
    key = model.table(table).key
    changed_keys = sorted(set(applied.versions.column(key).to_pylist()) - {None}, key=str)
    for audience in tables:
        if audience == table:
            reason = "deleted" if deleting else "updated"
            out[audience] = wa.route(audience, changed_keys, reason=reason).to_dict()
            continue
        keys = _affected(wa, audience, table, applied)
        if keys is None:  # an in_segment an active definition reads was refreshed: everyone who may move
            out[audience] = wa.route(audience, None, reason="related", detail=f"segments {applied.result.refreshed}").to_dict()
        elif keys:
            out[audience] = wa.route(audience, sorted(keys, key=str), reason="related", detail=table).to_dict()
    return out


def _affected(wa: Assignments, audience: str, table: str, applied: Applied) -> set[Any] | None:
    """Keys of ``audience`` a change of ``table`` may move (None: possibly any, through a refreshed in_segment)."""
    import uuid

    from sqlglot import exp

    from segmenta.compiler.affected import KEY, affected_keys
    from segmenta.compiler.reads import segment_reads

    model = wa.ws.model
    with wa.store.session() as s:
        rows = s.scalars(
            select(AssignmentSegment.definition).where(
                AssignmentSegment.table_name == audience,
                AssignmentSegment.status == ACTIVE,
                AssignmentSegment.is_default.is_(False),
            )
        ).all()
    reads = [segment_reads(parse_definition(raw, model), model) for raw in rows]
    refreshed = set(applied.result.refreshed)
    if any(r.segments & refreshed for r in reads):
        return None
    assert applied.versions is not None
    columns = set(model.table(table).columns) if applied.changed is None else applied.changed
    touching = [r for r in reads if r.touches(table, columns)]
    if not touching:
        return set()
    name = f"__segmenta_assignment_versions_{uuid.uuid4().hex[:16]}"
    # one chunk: PostgreSQL's COPY of a table whose first chunk is empty (old rows of an insert) sends a NUL byte
    staged = wa.ws.engine.stage(name, applied.versions.combine_chunks())
    out: set[Any] = set()
    try:
        src = exp.select(*[exp.column(c, quoted=True) for c in applied.versions.column_names]).from_(staged)
        for r in touching:
            q = affected_keys(model, r, table, src, columns=applied.changed)
            if q is not None:
                out.update(wa.ws.engine.column(exp.select(exp.column(KEY, quoted=True)).from_(q.subquery("a"))))
    finally:
        wa.ws.engine.drop_staged(name)
    return out
